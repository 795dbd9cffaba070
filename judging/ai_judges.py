"""AI judges for finished debates: an LLM (through the same back-ends as AI debaters) reads the
transcript the way a human judge sees it, quotes marked verified / near / unverified, and returns
a probability for each answer. Its verdict is stored with judge_kind="ai" and full provenance.

The "offline" back-end is a transparent baseline that needs no network: it favours the side whose
speeches carry more verified quotation (useful in the embedded default and for wiring tests)."""
import logging
import re

from django.db import transaction
from django.db.models import Exists, OuterRef

from debates import services, snapshots
from debates.agents.config import AgentConfig, Budget
from debates.agents.debater import find_json_object
from debates.agents.errors import AgentError
from debates.agents.llm import chat_model
from debates.agents.prompts import render, template_for
from debates.models import Debate
from debates.protocol import JUDGE, Refused, validate_probabilities

from . import verdicts
from .models import Verdict

log = logging.getLogger(__name__)
FINISHED = (Debate.AWAITING_VERDICT, Debate.COMPLETE)
OFFLINE_JUDGE = "offline-verified-quotes"
_QUOTE = re.compile(r"<quote\s*>(.*?)</quote\s*>", re.IGNORECASE | re.DOTALL)


def judge_debate(debate_id: int, config: dict) -> Verdict:
    """The AI judge's verdict on a finished debate (the one already stored for this model, if any)."""
    agent = AgentConfig.from_dict(config)
    name = agent.model or OFFLINE_JUDGE
    debate = Debate.objects.select_related("question").get(pk=debate_id)
    if debate.status not in FINISHED:
        raise Refused("debate_not_over", "AI judges judge finished debates")
    existing = _existing(debate, name)
    if existing:
        return existing
    state = snapshots.state_for(debate, snapshots.Viewer(snapshots.JUDGE_VIEW, None))
    fields = {"question": state["question"]["text"], "transcript": judge_transcript(state),
              "answers": "\n".join(f"{i + 1}. {a}" for i, a in enumerate(state["question"]["answers"]))}
    if agent.backend == "offline":
        shown, reason, exchange = _offline_judgment(state), "more verified quotation for this side", {}
    else:
        shown, reason, exchange = _model_judgment(agent, fields, len(state["question"]["answers"]))
    return _save(debate, agent, name, shown, reason, dict(exchange, fields_seen=sorted(fields)))


def judge_finished_debates(config: dict, debates=None) -> list[Verdict]:
    """Runs the AI judge over every finished debate that has no verdict from this model yet.
    A debate the judge cannot judge (unreadable replies, budget, no passage) is logged and skipped."""
    agent = AgentConfig.from_dict(config)
    name = agent.model or OFFLINE_JUDGE
    judged = Verdict.objects.filter(debate=OuterRef("pk"), judge_kind=Verdict.AI, ai_judge=name)
    pending = (debates if debates is not None else Debate.objects.all()).filter(status__in=FINISHED).exclude(
        Exists(judged)).order_by("pk")
    verdicts = []
    for debate_id in pending.values_list("pk", flat=True):
        try:
            verdicts.append(judge_debate(debate_id, config))
        except (AgentError, Refused) as error:
            log.warning("AI judge %s skipped debate %s: %s", name, debate_id, error)
    return verdicts


def judge_transcript(state: dict) -> str:
    """The debate as the judge sees it, quotes marked with their checked status."""
    names = {s["seat"]: s["name"] for s in state["seats"]}
    answers = state["question"]["answers"]
    argued = {s["seat"]: answers[s["answer"]] for s in state["seats"] if "answer" in s}
    lines = []
    for turn in state["turns"]:
        who = "Judge" if turn["seat"] == JUDGE else names.get(turn["seat"], turn["seat"])
        if turn["seat"] in argued:
            who += f" (arguing for \"{argued[turn['seat']]}\")"
        heading = f"Round {turn['round'] + 1}, {who}"
        if turn["kind"] == "timeout":
            lines.append(f"{heading}: (no speech: ran out of time)")
        elif turn.get("probabilities"):
            beliefs = ", ".join(f"{a}: {p:.0%}" for a, p in zip(answers, turn["probabilities"]))
            lines.append(f"{heading}: belief {beliefs}. {turn.get('text', '')}".rstrip())
        else:
            lines.append(f"{heading}: {mark_quotes(turn.get('text', ''), turn.get('payload', {}).get('quotes', []))}")
    return "\n\n".join(lines)


def mark_quotes(text: str, checked: list[dict]) -> str:
    """<quote>x</quote> -> [verified quote: "x"] (or near / unverified), in order."""
    statuses = iter(q["status"] for q in checked)
    return _QUOTE.sub(lambda m: f"[{next(statuses, 'unverified')} quote: \"{m.group(1).strip()}\"]", text)


def parse_probabilities(reply: str, answer_count: int) -> tuple[list[float], str]:
    """{"probabilities": [...], "reason": "..."} from a model's reply. Raises ValueError saying
    what is wrong. Probabilities that do not quite add up to 1 are rescaled; a tie is refused."""
    found = find_json_object(reply)
    if not isinstance(found, dict) or "probabilities" not in found:
        raise ValueError('no JSON object with "probabilities" in the reply')
    values = found["probabilities"]
    if not isinstance(values, list) or len(values) != answer_count:
        raise ValueError(f"give exactly {answer_count} probabilities")
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in values):
        raise ValueError("probabilities must be non-negative numbers")
    total = float(sum(values))
    if total <= 0:
        raise ValueError("the probabilities add up to 0")
    probabilities = [float(v) / total for v in values]
    top = max(probabilities)
    if sum(1 for p in probabilities if abs(p - top) < 1e-9) > 1:
        raise ValueError("the top probabilities are tied: favour one answer")
    reason = found.get("reason")
    return probabilities, reason.strip() if isinstance(reason, str) and reason.strip() else "(no reason given)"


def _model_judgment(agent: AgentConfig, fields: dict, answer_count: int):
    model = chat_model(agent, Budget(agent))
    system = render("judge_system", agent.prompts, fields)
    prompt = render("judge_prompt", agent.prompts, fields)
    replies = []
    for _ in range(2):  # one more try when the reply cannot be read
        reply = model.complete(system, prompt)
        replies.append(reply)
        try:
            probabilities, reason = parse_probabilities(reply, answer_count)
        except ValueError as problem:
            prompt += (f"\n\nYour reply could not be used: {problem}. Reply with JSON only: "
                       f"{{\"probabilities\": [{answer_count} numbers adding up to 1], \"reason\": \"...\"}}.")
            continue
        return probabilities, reason, {"replies": replies, "usage": model.budget.this_turn.to_dict(),
                                       "prompts": {"judge_system": template_for("judge_system", agent.prompts),
                                                   "judge_prompt": template_for("judge_prompt", agent.prompts)},
                                       "rendered_prompt": prompt, "system": system}
    raise AgentError("unreadable_judgment", f"the AI judge's replies could not be read twice: {replies[-1][:200]!r}")


def _offline_judgment(state: dict) -> list[float]:
    """Shown-order probabilities: 1 + verified quote characters per answer, normalised; a draw
    leans 55/45 to the answer shown first so that a verdict always favours one answer."""
    weight = [1.0] * len(state["question"]["answers"])
    answer_of = {s["seat"]: s["answer"] for s in state["seats"] if "answer" in s}
    for quote in state["quotes"]:
        if quote["status"] == "verified" and quote["seat"] in answer_of:
            weight[answer_of[quote["seat"]]] += len(quote["text"])
    if len(set(weight)) == 1:
        weight[0] *= 55 / 45
    return [w / sum(weight) for w in weight]


def _existing(debate: Debate, name: str):
    return Verdict.objects.filter(debate=debate, judge_kind=Verdict.AI, ai_judge=name).first()


def _save(debate, agent: AgentConfig, name: str, shown: list[float], reason: str, exchange: dict) -> Verdict:
    with transaction.atomic():
        debate = Debate.objects.select_for_update().select_related("question").get(pk=debate.pk)
        existing = _existing(debate, name)
        if existing:
            return existing
        canonical = list(validate_probabilities(services.to_canonical(debate, shown), len(debate.question.answers)))
        verdict, _ = verdicts.record_verdict(debate, canonical, judge_kind=Verdict.AI, ai_judge=name, live=False,
                                             reason=reason, provenance=dict(agent.provenance(), **exchange))
        return verdict
