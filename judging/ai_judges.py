"""AI judges for finished debates: an LLM (through the same back-ends as AI debaters) reads the
transcript the way a human judge sees it, quotes marked verified / near / unverified, and returns
a probability for each answer. Its verdict is stored with judge_kind="ai" and full provenance.

The "scripted" back-end is a transparent baseline that needs no network: it favours the side whose
speeches carry more verified quotation (useful in the embedded default and for wiring tests)."""

import logging

from django.db import transaction
from django.db.models import Exists, OuterRef

from debates import live, quotes, services, snapshots
from debates.agents import backends
from debates.agents.config import AgentConfig, Budget, Usage
from debates.agents.debater import find_json_object
from debates.agents.errors import AgentError
from debates.agents.llm import chat_model
from debates.agents.prompts import render, template_for
from debates.agents.turns import spent_by
from debates.models import Debate
from debates.protocol import JUDGE, Refused, validate_probabilities

from . import verdicts
from .models import Verdict

log = logging.getLogger(__name__)
FINISHED = (Debate.AWAITING_VERDICT, Debate.COMPLETE)
SCRIPTED_JUDGE = "offline-verified-quotes"  # the name its verdicts are stored under (from before the rename)


def judge_debate(debate_id: int, config: dict, seated: bool = False, spent: Usage | None = None) -> Verdict:
    """The AI judge's verdict on a finished debate (the one already stored for this model, if any).
    seated: the judge seated in the debate, who gave the feedback (its verdict is the live one);
    spent: what its earlier turns used of its budget."""
    agent = AgentConfig.from_dict(config)
    name = agent.model or SCRIPTED_JUDGE
    debate = Debate.objects.select_related("question").get(pk=debate_id)
    if debate.status not in FINISHED:
        raise Refused("debate_not_over", "AI judges judge finished debates")
    existing = _existing(debate, name)
    if existing:
        return existing
    state = snapshots.state_for(debate, snapshots.Viewer(snapshots.JUDGE_VIEW, None))
    fields = {
        "question": state["question"]["text"],
        "transcript": judge_transcript(state),
        "answers": "\n".join(f"{i + 1}. {a}" for i, a in enumerate(state["question"]["answers"])),
    }
    if agent.kind == backends.SCRIPTED:
        shown, reason, exchange = _scripted_judgment(state), "more verified quotation for this side", {}
    else:
        shown, reason, exchange = _model_judgment(agent, fields, len(state["question"]["answers"]), spent)
    return _save(debate, agent, name, shown, reason, dict(exchange, fields_seen=sorted(fields)), seated)


def judge_finished_debates(config: dict, debates=None) -> list[Verdict]:
    """Runs the AI judge over every finished debate that has no verdict from this model yet.
    A debate the judge cannot judge (unreadable replies, budget, no passage) is logged and skipped."""
    agent = AgentConfig.from_dict(config)
    name = agent.model or SCRIPTED_JUDGE
    judged = Verdict.objects.filter(debate=OuterRef("pk"), judge_kind=Verdict.AI, ai_judge=name)
    pending = (
        (debates if debates is not None else Debate.objects.all())
        .filter(status__in=FINISHED)
        .exclude(Exists(judged))
        .order_by("pk")
    )
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
            who += f' (arguing for "{argued[turn["seat"]]}")'
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
    """<quote>x</quote> -> [verified quote: "x"] (or near / unverified / unchecked), in order: the
    pieces every page shows (debates.quotes.speech_segments), written for a language model."""
    return "".join(
        piece["text"] if "quote" not in piece else f'[{piece["status"]} quote: "{piece["quote"]}"]'
        for piece in quotes.speech_segments(text, checked)
    )


def parse_probabilities(reply: str, answer_count: int) -> tuple[list[float], str]:
    """{"probabilities": [...], "reason": "..."} from a model's reply. Raises ValueError saying
    what is wrong. Probabilities that do not quite add up to 1 are rescaled; a tie is refused."""
    found, probabilities = _reply_probabilities(reply, answer_count)
    if verdicts.tied(probabilities):
        raise ValueError("the top probabilities are tied: favour one answer")
    reason = found.get("reason")
    return probabilities, reason.strip() if isinstance(reason, str) and reason.strip() else "(no reason given)"


def parse_feedback(reply: str, answer_count: int) -> tuple[list[float], str, bool]:
    """{"probabilities": [...], "comment": "...", "end_debate": false} from a model's reply:
    (probabilities, comment, end_debate). A belief between rounds may be undecided (ties allowed)."""
    found, probabilities = _reply_probabilities(reply, answer_count)
    comment = found.get("comment")
    return probabilities, comment.strip() if isinstance(comment, str) else "", found.get("end_debate") is True


def _reply_probabilities(reply: str, answer_count: int) -> tuple[dict, list[float]]:
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
    return found, [float(v) / total for v in values]


def _model_judgment(agent: AgentConfig, fields: dict, answer_count: int, spent: Usage | None = None):
    (probabilities, reason), exchange = _ask(
        agent,
        "judge_prompt",
        fields,
        spent,
        lambda reply: parse_probabilities(reply, answer_count),
        f'{{"probabilities": [{answer_count} numbers adding up to 1], "reason": "..."}}',
    )
    return probabilities, reason, exchange


def _ask(agent: AgentConfig, template: str, fields: dict, spent: Usage | None, parse, wanted: str):
    """The model's parsed reply to a judge prompt, asked once more when it cannot be read, and the
    exchange for provenance. Budget and retries as for AI debaters (debates.agents)."""
    model = chat_model(agent, Budget(agent, spent))
    system = render("judge_system", agent.prompts, fields)
    prompt = render(template, agent.prompts, fields)
    replies = []
    for _ in range(2):  # one more try when the reply cannot be read
        reply = model.complete(system, prompt)
        replies.append(reply)
        try:
            parsed = parse(reply)
        except ValueError as problem:
            prompt += f"\n\nYour reply could not be used: {problem}. Reply with JSON only: {wanted}."
            continue
        return parsed, {
            "replies": replies,
            "usage": model.budget.this_turn.to_dict(),
            "prompts": {
                "judge_system": template_for("judge_system", agent.prompts),
                template: template_for(template, agent.prompts),
            },
            "rendered_prompt": prompt,
            "system": system,
        }
    raise AgentError("unreadable_judgment", f"the AI judge's replies could not be read twice: {replies[-1][:200]!r}")


# ---------------------------------------------------------------------------------------------
# The AI judge seated in a debate (experiments with judges: {kind: ai}): feedback in every judge
# feedback round, then the verdict. judging.tasks runs these through the worker.


def feedback_client_id(expected_round: int) -> str:
    return f"ai-{expected_round}-{JUDGE}"


def seated_judge(debate: Debate):
    """The debate's AI judge seat (a judge Participant with agent settings), or None."""
    return debate.participants.filter(seat=JUDGE, agent__isnull=False).first()


def give_feedback(debate_id: int, expected_round: int) -> str:
    """The seated AI judge's report in a judge feedback round, if it is still expected there.
    Idempotent (stored under client_id ai-<round>-judge). Returns what happened; raises
    AgentUnavailable when the back-end keeps failing (retry later), AgentError when it cannot."""
    debate = Debate.objects.select_related("question").filter(pk=debate_id).first()
    seat = seated_judge(debate) if debate else None
    if seat is None:
        return "not_an_ai_judge"
    client_id = feedback_client_id(expected_round)
    if debate.turns.filter(seat=JUDGE, client_id=client_id).exists():
        return "already_given"
    engine = debate.engine()
    if debate.status != Debate.LIVE or engine.round_index != expected_round or JUDGE not in engine.expected_seats():
        return "not_expected"
    agent = AgentConfig.from_dict(seat.agent)
    state = snapshots.state_for(debate, snapshots.Viewer(snapshots.JUDGE_VIEW, seat))
    answers = state["question"]["answers"]
    if agent.kind == backends.SCRIPTED:
        shown, comment, end, usage = _scripted_judgment(state), "", False, Usage()
    else:
        fields = {
            "question": state["question"]["text"],
            "transcript": judge_transcript(state),
            "answers": "\n".join(f"{i + 1}. {a}" for i, a in enumerate(answers)),
            "round": expected_round + 1,
        }
        (shown, comment, end), exchange = _ask(
            agent,
            "judge_feedback",
            fields,
            spent_by(debate, JUDGE),
            lambda reply: parse_feedback(reply, len(answers)),
            f'{{"probabilities": [{len(answers)} numbers adding up to 1], "comment": "...", "end_debate": false}}',
        )
        usage = Usage.from_dict(exchange["usage"])
    protocol = engine.protocol
    try:
        _, events = services.submit_agent_turn(
            debate_id,
            JUDGE,
            kind="feedback",
            text=comment[: protocol.char_limit],
            probabilities=services.to_canonical(debate, shown),
            end_debate=end and protocol.judge_may_end,
            expected_round=expected_round,
            client_id=client_id,
            payload={"agent": dict(agent.provenance(), usage=usage.to_dict())},
        )
    except Refused as refused:
        if refused.code in ("wrong_round", "debate_over", "not_started", "not_your_turn"):
            return "not_expected"
        raise AgentError(refused.code, refused.message) from None
    live.publish(debate_id, events)
    return "given"


def forfeit_feedback(debate_id: int, expected_round: int, error: AgentError) -> str:
    """The AI judge's report cannot be had: its turn is recorded as timed out, with the reason, so
    the debate goes on (as an AI debater's failed turn)."""
    log.warning("AI judge feedback failed: debate %s round %s: %s", debate_id, expected_round, error)
    events = services.forfeit_agent_turn(
        debate_id,
        JUDGE,
        expected_round=expected_round,
        client_id=feedback_client_id(expected_round),
        code=error.code,
        message=str(error),
    )
    live.publish(debate_id, events)
    return f"failed: {error.code}"


def seated_verdict(debate_id: int) -> Verdict | None:
    """The seated AI judge's verdict once the debate is over (live=True: it judged the debate as it
    happened), on what is left of its budget. None when the debate has no AI judge seat."""
    debate = Debate.objects.filter(pk=debate_id).first()
    seat = seated_judge(debate) if debate else None
    if seat is None:
        return None
    return judge_debate(debate_id, seat.agent, seated=True, spent=spent_by(debate, JUDGE))


def _scripted_judgment(state: dict) -> list[float]:
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


def _save(
    debate, agent: AgentConfig, name: str, shown: list[float], reason: str, exchange: dict, seated: bool = False
) -> Verdict:
    with transaction.atomic():
        debate = Debate.objects.select_for_update(of=("self",)).select_related("question").get(pk=debate.pk)
        existing = _existing(debate, name)
        if existing:
            return existing
        canonical = list(validate_probabilities(services.to_canonical(debate, shown), len(debate.question.answers)))
        verdict, _ = verdicts.record_verdict(
            debate,
            canonical,
            judge_kind=Verdict.AI,
            ai_judge=name,
            live=seated,
            reason=reason,
            provenance=dict(agent.provenance(), **exchange),
        )
        return verdict
