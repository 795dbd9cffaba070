"""Evidence in text debates: finding the quotes in a speech and checking them against the hidden
passage. Pure module (no Django).

A speech marks quotes in one of two ways:
- <quote>words copied from the passage</quote>
- <quote span="START:END"/> : characters START..END of the passage; the server writes the words in.

Each quote gets a status:
- "verified": after normalising it occurs in the passage exactly;
- "near": within max(2, 5% of its length) edits of some stretch of the passage; shown as such,
  never silently accepted;
- "unverified": anything else.
A quote the server has no status for (imported transcripts, stored before checking) is "unchecked".
Normalising keeps only letters and digits, case-folded. Case, punctuation and white space are
layout rather than evidence, and counting them marks honest quotes unverified.
"""

import functools
import re
import unicodedata
from dataclasses import dataclass

from .protocol import Refused

VERIFIED, NEAR, UNVERIFIED = "verified", "near", "unverified"
UNCHECKED = "unchecked"  # no status stored for the quote
PENDING = "pending"  # the live room only: a quote still being written
# What each status means, in words and a sign: colour is never the only sign. The room's client
# has the same words (static/js/debate-state.js); tests/test_quote_rendering.py holds them equal.
QUOTE_LABELS = {
    VERIFIED: "verified quote",
    NEAR: "near match",
    UNVERIFIED: "not found in the passage",
    UNCHECKED: "not checked",
    PENDING: "checked when saved",
}
QUOTE_SIGNS = {VERIFIED: "✓", NEAR: "≈", UNVERIFIED: "✗", UNCHECKED: "?", PENDING: "…"}
NEAR_FRACTION = 0.05
NEAR_MIN_EDITS = 2
NEAR_MIN_LENGTH = 12  # shorter quotes are within two edits of too many stretches of any story
NEAR_MAX_LENGTH = 4_000  # longer quotes are only checked exactly (the fuzzy search grows with length)

_TEXT_QUOTE = re.compile(r"<quote\s*>(.*?)</quote\s*>", re.IGNORECASE | re.DOTALL)
_SPAN_QUOTE = re.compile(r"""<quote\s+span\s*=\s*["'](\d+)\s*:\s*(\d+)["']\s*/>""", re.IGNORECASE)
_ANY_TAG = re.compile(r"</?quote\b[^>]*>?", re.IGNORECASE)


@dataclass(frozen=True)
class Quote:
    text: str
    status: str
    start: int | None = None  # the matched characters of the passage, when found
    end: int | None = None
    edits: int | None = None  # near matches: how many edits away

    def to_dict(self) -> dict:
        found = {"text": self.text, "status": self.status, "start": self.start, "end": self.end}
        if self.edits is not None:
            found["edits"] = self.edits
        return found


def normalise(text: str) -> tuple[str, list[int]]:
    """The letters and digits of text, case-folded, and for each of them its index in text."""
    letters, positions = [], []
    for index, char in enumerate(text):
        if char.isascii():
            if char.isalnum():
                letters.append(char.lower())
                positions.append(index)
            continue
        for folded in unicodedata.normalize("NFKC", char).casefold():
            if folded.isalnum():
                letters.append(folded)
                positions.append(index)
    return "".join(letters), positions


class Passage:
    """A hidden passage prepared for checking quotes against it."""

    def __init__(self, text: str):
        self.text = text
        self.normalised, self.positions = normalise(text)

    def check(self, quote: str) -> Quote:
        wanted, _ = normalise(quote)
        if not wanted:
            raise Refused("empty_quote", "a quote must contain letters or digits")
        found = self.normalised.find(wanted)
        if found >= 0:
            return Quote(quote, VERIFIED, *self._span(found, found + len(wanted)))
        allowed = near_edit_allowance(len(wanted))
        if allowed and self.normalised:
            edits, start, end = fuzzy_find(wanted, self.normalised, allowed)
            if edits is not None:
                return Quote(quote, NEAR, *self._span(start, end), edits=edits)
        return Quote(quote, UNVERIFIED)

    def _span(self, start: int, end: int) -> tuple[int, int]:
        """Normalised [start, end) -> the passage's own characters."""
        return self.positions[start], self.positions[end - 1] + 1


@functools.lru_cache(maxsize=16)
def passage(text: str) -> Passage:
    return Passage(text)


def near_edit_allowance(length: int) -> int:
    """How many edits a near match may have; 0 when the quote is too short or long to search."""
    if length < NEAR_MIN_LENGTH or length > NEAR_MAX_LENGTH:
        return 0
    return max(NEAR_MIN_EDITS, int(length * NEAR_FRACTION))


def fuzzy_find(pattern: str, text: str, max_edits: int):
    """The stretch of text closest to pattern in edit distance, if at most max_edits away.
    Returns (edits, start, end) or (None, None, None). Linear in len(text) (Myers' bit-vector
    algorithm, one machine-word operation per character for patterns up to 64 letters)."""
    edits, end = _closest_ending(pattern, text, anchored=False)
    if edits > max_edits:
        return None, None, None
    # The start: run the same scan backwards from the end, anchored there.
    window_start = max(0, end + 1 - len(pattern) - max_edits)
    backwards = text[window_start : end + 1][::-1]
    _, length = _closest_ending(pattern[::-1], backwards, anchored=True)
    return edits, end + 1 - (length + 1), end + 1


def _closest_ending(pattern: str, text: str, anchored: bool) -> tuple[int, int]:
    """(smallest edit distance, index in text where it ends) between pattern and a stretch of text
    ending at each index. anchored: the stretch must begin at text[0] (plain edit distance to a
    prefix); otherwise it may begin anywhere. Bit-parallel dynamic programming (Myers 1999, in
    Hyyrö's formulation): bit i of pv/mv says the column's cell i is one more/less than cell i-1."""
    m = len(pattern)
    letter_bits: dict[str, int] = {}
    for i, char in enumerate(pattern):
        letter_bits[char] = letter_bits.get(char, 0) | (1 << i)
    full, top = (1 << m) - 1, 1 << (m - 1)
    pv, mv, score = full, 0, m
    best, best_end = m, -1
    carry_in = 1 if anchored else 0
    for j, char in enumerate(text):
        eq = letter_bits.get(char, 0)
        xv = eq | mv
        xh = ((((eq & pv) + pv) & full) ^ pv) | eq
        ph = (mv | ~(xh | pv)) & full
        mh = pv & xh
        if ph & top:
            score += 1
        elif mh & top:
            score -= 1
        ph = ((ph << 1) | carry_in) & full
        mh = (mh << 1) & full
        pv = (mh | ~(xv | ph)) & full
        mv = ph & xv
        if score < best:
            best, best_end = score, j
    return best, best_end


@dataclass(frozen=True)
class Marked:
    """A quote as written in a speech: its text and where the markup sits in the speech."""

    text: str
    start: int
    end: int


def expand_spans(text: str, passage_text: str) -> str:
    """Replaces <quote span="S:E"/> with <quote>the passage's characters S..E</quote>."""

    def fill(match):
        start, end = int(match.group(1)), int(match.group(2))
        if not 0 <= start < end <= len(passage_text):
            raise Refused(
                "bad_quote_span", f"quote span {start}:{end} is not inside the passage (0:{len(passage_text)})"
            )
        return f"<quote>{passage_text[start:end]}</quote>"

    return _SPAN_QUOTE.sub(fill, text)


def find_quotes(text: str) -> list[Marked]:
    """The <quote>...</quote> elements of a speech, in order. Refused on broken markup."""
    marks = []
    for match in _TEXT_QUOTE.finditer(text):
        inner = match.group(1)
        if _ANY_TAG.search(inner):
            raise Refused("bad_quote_markup", "quotes cannot be nested: close each <quote> before opening another")
        marks.append(Marked(inner.strip(), match.start(), match.end()))
    leftover = _TEXT_QUOTE.sub("", text)
    if _ANY_TAG.search(leftover):
        raise Refused(
            "bad_quote_markup",
            "a <quote> is not closed, or a </quote> has no <quote> (write <quote>words from the passage</quote>)",
        )
    return marks


def speech_segments(text: str, checked=()) -> list[dict]:
    """A speech as pieces, for showing it without its markup: {"text"} for the speaker's words,
    {"quote", "status"} for each quote. The i-th quote takes the status of the i-th quote the
    server stored (`checked`, dicts with a "status"), "unchecked" when there is none. The room's
    client cuts speeches the same way (speechSegments in static/js/debate-state.js)."""
    statuses = iter(q.get("status") or UNCHECKED for q in checked or ())
    pieces, last = [], 0
    for match in _TEXT_QUOTE.finditer(text):
        if match.start() > last:
            pieces.append({"text": text[last : match.start()]})
        pieces.append({"quote": match.group(1).strip(), "status": next(statuses, UNCHECKED)})
        last = match.end()
    if last < len(text):
        pieces.append({"text": text[last:]})
    return pieces


def quote_badge(status: str) -> str:
    """The words shown beside a quote: its sign and what its status means."""
    return f"{QUOTE_SIGNS.get(status, '')} {QUOTE_LABELS.get(status, status)}".strip()


def quote_chars(quotes) -> int:
    """Characters counted against quote budgets: the quoted text as written."""
    return sum(len(q["text"] if isinstance(q, dict) else q.text) for q in quotes)


def check_speech(
    text: str, passage_text: str, per_turn: int | None = None, debate_chars_left: int | None = None
) -> tuple[str, list[Quote]]:
    """Expands span quotes, checks every quote against the passage and enforces the budgets.
    Returns (the speech text to store, its quotes in order). Refused when over budget."""
    text = expand_spans(text, passage_text)
    marks = find_quotes(text)
    if not marks:
        return text, []
    used = quote_chars(marks)
    if per_turn is not None and used > per_turn:
        raise Refused(
            "quote_budget", f"quotes may have at most {per_turn} characters per turn (this speech quotes {used})"
        )
    if debate_chars_left is not None and used > debate_chars_left:
        raise Refused(
            "quote_budget",
            f"you have {max(0, debate_chars_left)} characters of quotes left in "
            f"this debate (this speech quotes {used})",
        )
    prepared = passage(passage_text)
    return text, [prepared.check(mark.text) for mark in marks]


def fit_speech(text: str, char_limit: int, quote_chars_left: int | None) -> str:
    """Makes a generated speech acceptable: quotes past the budget lose their markup (they become
    plain quotation marks) and the speech is cut to char_limit without cutting into a quote.
    Broken markup is removed. Used for AI speeches, never for people's."""
    pieces, budget, last = [], quote_chars_left, 0
    for match in _TEXT_QUOTE.finditer(text):
        pieces.append(_ANY_TAG.sub("", text[last : match.start()]))
        inner = _ANY_TAG.sub("", match.group(1)).strip()
        if inner and normalise(inner)[0] and (budget is None or len(inner) <= budget):
            pieces.append(f"<quote>{inner}</quote>")
            budget = None if budget is None else budget - len(inner)
        else:
            pieces.append(f'"{inner}"' if inner else "")
        last = match.end()
    pieces.append(_ANY_TAG.sub("", text[last:]))
    fitted = ""
    for piece in pieces:
        if len(fitted) + len(piece) <= char_limit:
            fitted += piece
        elif not piece.startswith("<quote>"):
            cut = piece[: char_limit - len(fitted) + 1]
            fitted += cut.rsplit(None, 1)[0] if len(cut.split()) > 1 else ""  # whole words only
            break
        else:
            break
    return fitted.strip()
