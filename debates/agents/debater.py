"""One AI debater turn, from the debate so far to the speech to save: drafts best_of_n candidates
(streaming their text), lets a judge model pick the most persuasive, and fits the choice to the
protocol's limits. Pure module (no Django): the caller supplies the context and callbacks."""

import hashlib
import json
import re
import time
from dataclasses import dataclass, field

from .. import quotes
from . import backends, scripted
from .config import AgentConfig, Budget, Usage
from .errors import AgentError
from .llm import chat_model
from .prompts import render, template_for


@dataclass
class TurnContext:
    """What the debater may know when it speaks (never more than its seat may see)."""

    seat: str
    question: str
    answers: list[str]  # in the order the judge sees them
    my_answer: str
    opponent_answer: str
    passage: str
    transcript: str
    round: int  # from 1
    char_limit: int
    quote_chars: int | None  # quote characters this speech may use (turn and debate budgets)
    already_quoted: list[str] = field(default_factory=list)  # this seat's earlier quotes

    def fields(self) -> dict:
        return {
            "seat": self.seat,
            "question": self.question,
            "answers": "\n".join(f"{i + 1}. {a}" for i, a in enumerate(self.answers)),
            "my_answer": self.my_answer,
            "opponent_answer": self.opponent_answer,
            "passage": self.passage,
            "transcript": self.transcript or "(nothing yet)",
            "round": self.round,
            "char_limit": self.char_limit,
            "quote_limit": "any number of" if self.quote_chars is None else self.quote_chars,
        }


@dataclass
class TurnResult:
    text: str
    candidates: list[dict]
    chosen: int
    usage: Usage
    provenance: dict

    def payload(self) -> dict:
        found = {"agent": dict(self.provenance, usage=self.usage.to_dict())}
        if len(self.candidates) > 1:
            found["candidates"], found["chosen"] = self.candidates, self.chosen
        return found


class Callbacks:
    """What the caller hears while a turn is written; all optional."""

    def delta(self, candidate: int, text: str) -> None: ...

    def retry(self, candidate: int, failures: int, error, delay: float) -> None: ...


def write_turn(
    config: AgentConfig, context: TurnContext, budget: Budget, callbacks: Callbacks | None = None
) -> TurnResult:
    callbacks = callbacks or Callbacks()
    if not context.passage.strip():
        raise AgentError("no_passage", "AI debaters argue text debates: this question has no hidden passage")
    fields = context.fields()
    if config.kind == backends.SCRIPTED:
        drafts, scores, chosen = _scripted_drafts(config, context, fields, budget, callbacks)
        preference = {"method": "bm25_support", "scores": scores}
    else:
        drafts = _model_drafts(config, context, fields, budget, callbacks)
        chosen, preference = _preferred(config, fields, drafts, budget) if len(drafts) > 1 else (0, {})
    fitted = [quotes.fit_speech(d, context.char_limit, context.quote_chars) for d in drafts]
    if not fitted[chosen]:
        raise AgentError("empty_speech", "the model wrote nothing that can be said in this turn")
    candidates = [{"text": f, "raw": d} if f != d else {"text": f} for f, d in zip(fitted, drafts)]
    return TurnResult(fitted[chosen], candidates, chosen, budget.this_turn, _provenance(config, fields, preference))


def _scripted_drafts(config, context, fields, budget, callbacks):
    budget.output_allowance("")
    drafts, scores = [], []
    for variant in range(config.best_of_n):
        text, score = scripted.compose(
            fields,
            config.prompts,
            context.passage,
            context.char_limit,
            context.quote_chars,
            {quotes.normalise(q)[0] for q in context.already_quoted},
            variant,
        )
        drafts.append(text)
        scores.append(round(score, 4))
    budget.charge(Usage(0, sum(len(scripted.words(d)) for d in drafts)))
    chosen = scores.index(max(scores))  # the best-supported draft; the first of equals
    for piece in re.findall(r"\S+\s*", drafts[chosen]):  # the scripted debater "types" its speech
        callbacks.delta(chosen, piece)
        if config.token_delay:
            time.sleep(config.token_delay)
    return drafts, scores, chosen


def _model_drafts(config, context, fields, budget, callbacks):
    model = chat_model(config, budget)
    system, user = render("debater_system", config.prompts, fields), render("debater_turn", config.prompts, fields)
    drafts = []
    for candidate in range(config.best_of_n):
        pieces = []

        def on_retry(failures, error, delay, candidate=candidate, pieces=pieces):
            pieces.clear()
            callbacks.retry(candidate, failures, error, delay)

        for delta in model.stream(system, user, on_retry):
            pieces.append(delta)
            callbacks.delta(candidate, delta)
        drafts.append("".join(pieces))
    return drafts


def _preferred(config, fields, drafts, budget) -> tuple[int, dict]:
    """Asks the judge model (config.judge, else the debater's own model) which draft is most
    persuasive; asks once more if the reply cannot be read, then keeps the first draft."""
    judge = chat_model(config.judge or config, budget)
    listed = "\n\n".join(f"Speech {i + 1}:\n{d}" for i, d in enumerate(drafts))
    prompt = render("preference", config.prompts, dict(fields, candidates=listed))
    system = "You compare debate speeches for persuasiveness."
    replies = []
    for _ in range(2):
        reply = judge.complete(system, prompt)
        replies.append(reply)
        best = parse_choice(reply, len(drafts))
        if best is not None:
            return best, {"method": "judge_model", "model": judge.name, "replies": replies}
        prompt += f'\n\nYour reply could not be read. Answer with JSON only: {{"best": <1 to {len(drafts)}>}}.'
    return 0, {"method": "judge_model", "model": judge.name, "replies": replies, "unreadable": True}


def parse_choice(reply: str, count: int) -> int | None:
    """{"best": k} (1-based) -> k - 1; None when absent or out of range."""
    found = find_json_object(reply)
    value = found.get("best") if isinstance(found, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= count:
        return value - 1
    return None


def find_json_object(text: str):
    """The first JSON object in a model's reply (models like to wrap JSON in prose or code fences)."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _provenance(config: AgentConfig, fields: dict, preference: dict) -> dict:
    names = (
        ("scripted_opening", "scripted_rebuttal")
        if config.kind == backends.SCRIPTED
        else ("debater_system", "debater_turn")
    )
    if config.best_of_n > 1 and config.kind != backends.SCRIPTED:
        names += ("preference",)
    templates = {name: template_for(name, config.prompts) for name in names}
    rendered = json.dumps([templates, {k: str(v) for k, v in fields.items()}], sort_keys=True)
    found = dict(config.provenance(), prompts=templates, prompt_sha256=hashlib.sha256(rendered.encode()).hexdigest())
    if preference:
        found["preference"] = preference
    return found
