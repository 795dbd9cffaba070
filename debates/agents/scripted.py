"""The scripted debater: no network, no model. It ranks the passage's sentences by BM25 against
the question and its own answer, quotes the best stretches word for word (so every quote
verifies) within the quote budget, and writes a templated argument around them.
Pure module (numpy only)."""

import math
import re
from dataclasses import dataclass

import numpy as np

from .. import quotes
from .prompts import render

K1, B = 1.5, 0.75  # the usual BM25 constants
MY_ANSWER_WEIGHT = 2.0  # the answer's own words count more than the question's
DEFAULT_QUOTE_CHARS = 250  # per turn when the protocol sets no limit (the NYU platform's limit)
CONNECTORS = ("The story says: ", " It also says: ", " And: ", " Further: ")
STOPWORDS = frozenset(
    """a an and are as at be been but by did do does for from had has have he her him his how i
in is it its me my no not of on or our she so that the their them then there they this to was we were what when
where which who why will with would you your""".split()
)

_WORD = re.compile(r"[^\W_]+")
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+[\"'\u201d\u2019)\]]*)?")


def words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.casefold()) if w not in STOPWORDS]


def sentence_spans(passage: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, trimmed of surrounding white space."""
    spans = []
    for match in _SENTENCE.finditer(passage):
        text = match.group()
        start = match.start() + len(text) - len(text.lstrip())
        end = match.end() - (len(text) - len(text.rstrip()))
        if end > start and quotes.normalise(passage[start:end])[0]:
            spans.append((start, end))
    return spans


class SentenceIndex:
    """BM25 over the sentences of one passage."""

    def __init__(self, passage: str):
        self.passage = passage
        self.spans = sentence_spans(passage)
        self.tokens = [words(passage[s:e]) for s, e in self.spans]
        self.lengths = np.array([len(t) for t in self.tokens], dtype=float)
        self.average_length = float(self.lengths.mean()) if len(self.tokens) else 0.0

    def scores(self, query: dict[str, float]) -> np.ndarray:
        """BM25 score of every sentence for a query given as {word: weight}."""
        if not self.tokens or not query:
            return np.zeros(len(self.tokens))
        terms = list(query)
        column = {term: j for j, term in enumerate(terms)}
        counts = np.zeros((len(self.tokens), len(terms)))
        for i, sentence in enumerate(self.tokens):
            for word in sentence:
                j = column.get(word)
                if j is not None:
                    counts[i, j] += 1
        documents = len(self.tokens)
        containing = (counts > 0).sum(axis=0)
        idf = np.log((documents - containing + 0.5) / (containing + 0.5) + 1.0)
        norm = K1 * (1 - B + B * self.lengths / max(self.average_length, 1e-9))
        saturated = counts * (K1 + 1) / (counts + norm[:, None])
        weights = np.array([query[t] for t in terms])
        return saturated @ (idf * weights)


def query_for(question: str, my_answer: str, opponent_answer: str) -> dict[str, float]:
    """The question's words and, weighted up, the answer's; words only the opponent's answer has
    are left out, since sentences about them support the other side."""
    query = {w: 1.0 for w in words(question)}
    for word in words(my_answer):
        query[word] = MY_ANSWER_WEIGHT
    for word in set(words(opponent_answer)) - set(words(my_answer)) - set(words(question)):
        query.pop(word, None)
    return query


@dataclass(frozen=True)
class Evidence:
    text: str  # exactly as in the passage
    score: float


def best_window(passage: str, span: tuple[int, int], query: dict, max_chars: int) -> tuple[int, int] | None:
    """The stretch of whole words in a sentence, at most max_chars long, with the most query words."""
    start, end = span
    if end - start <= max_chars:
        return span
    found = [
        (m.start() + start, m.end() + start, query.get(m.group().casefold(), 0.0))
        for m in _WORD.finditer(passage[start:end])
    ]
    best, best_value = None, -1.0
    for i, (first, _, _) in enumerate(found):
        value = 0.0
        for _, last_end, weight in found[i:]:
            if last_end - first > max_chars:
                break
            value += weight
            if value > best_value:
                best, best_value = (first, last_end), value
    return best if best_value > 0 else None  # a cut-down sentence must keep some of the query's words


def pick_evidence(
    index: SentenceIndex, query: dict, chars: int, already_quoted: set[str], variant: int, most: int = len(CONNECTORS)
) -> list[Evidence]:
    """Up to `most` stretches of the passage, best first, together at most `chars` long. Variant 0
    is the plain ranking; other variants perturb it (for best-of-N) reproducibly."""
    scores = index.scores(query)
    if variant:
        noise = np.random.default_rng(variant).gumbel(size=len(scores))
        ranking = np.argsort(-(scores + noise * max(scores.std(), 0.1)), kind="stable")
    else:
        ranking = np.argsort(-scores, kind="stable")
    chosen: list = []
    left = chars
    for i in ranking:
        if len(chosen) == most or left < 20:
            break
        window = best_window(index.passage, index.spans[i], query, left)
        if window is None:
            continue
        text = index.passage[window[0] : window[1]]
        if quotes.normalise(text)[0] in already_quoted:
            continue
        chosen.append(Evidence(text, float(scores[i])))
        left -= len(text)
    return chosen


def compose(
    fields: dict,
    prompts: dict,
    passage: str,
    char_limit: int,
    quote_chars: int | None,
    already_quoted: set[str],
    variant: int = 0,
) -> tuple[str, float]:
    """A speech for the scripted debater and its score (the BM25 support of what it quotes).
    fields: the prompt fields (question, my_answer, opponent_answer, round, ...)."""
    template = "scripted_opening" if int(fields["round"]) == 1 else "scripted_rebuttal"
    skeleton = render(template, prompts, dict(fields, evidence=""))
    room = char_limit - len(skeleton) - 1
    quote_room = DEFAULT_QUOTE_CHARS if quote_chars is None else quote_chars
    query = query_for(fields["question"], fields["my_answer"], fields["opponent_answer"])
    index = _index(passage)
    evidence = pick_evidence(index, query, min(quote_room, max(0, room - 40)), already_quoted, variant)
    while evidence:
        text = "".join(f"{c}<quote>{e.text}</quote>" for c, e in zip(CONNECTORS, evidence))
        if len(text) <= room:
            break
        evidence = evidence[:-1]
    said = "".join(f"{c}<quote>{e.text}</quote>" for c, e in zip(CONNECTORS, evidence))
    speech = render(template, prompts, dict(fields, evidence=said.strip()))
    score = sum(e.score for e in evidence) + 0.1 * math.log1p(sum(len(e.text) for e in evidence))
    return quotes.fit_speech(speech, char_limit, quote_chars), score


_cached: dict[int, SentenceIndex] = {}


def _index(passage: str) -> SentenceIndex:
    key = hash(passage)
    index = _cached.get(key)
    if index is None or index.passage != passage:
        if len(_cached) > 32:
            _cached.clear()
        index = _cached[key] = SentenceIndex(passage)
    return index
