"""The one verdict path: every verdict - people live and offline, AI judges of every kind
(LLM, offline baseline, pixel network) and imports - is built, scored, stored and announced here.

The tie rule (one for the whole platform, docs/judging.md):
    a verdict whose top probabilities are tied is never credited to the truth: its chosen answer is
    the first tied wrong answer (in the question's canonical order), so it counts as wrong.
People and LLM judges are asked to favour one answer before it comes to this (their forms and
replies are refused or re-asked); the rule decides every tie that still reaches the record (a
pixel judge's equal logits, an AI baseline, rounding). Imports keep the source's own chosen answer,
correctness and score, and record the source's rule by name in provenance["tie_rule"].

Callers lock the debate (select_for_update) inside a transaction; events are published when the
transaction commits.
"""

from django.db import transaction

from debates import live, services
from debates.models import Debate, DebateEvent
from debates.protocol import JUDGE, Event, validate_probabilities

from . import scoring
from .models import Verdict

TIE_RULE = "tie-counts-as-wrong"
TOLERANCE = 1e-9


def source_rule(name: str, chosen_index: int, correct: bool, score: float, scoring_rule: str = "log") -> dict:
    """An imported verdict's own judgment, kept as its source made it under the source's rule `name`."""
    return {
        "tie_rule": name,
        "chosen_index": chosen_index,
        "correct": bool(correct),
        "score": score,
        "scoring_rule": scoring_rule,
    }


def chosen_answer(probabilities, correct_index: int) -> tuple[int, bool]:
    """(chosen answer, whether the top was tied) under the platform's tie rule."""
    top = max(probabilities)
    leaders = [i for i, p in enumerate(probabilities) if abs(p - top) < TOLERANCE]
    if len(leaders) == 1:
        return leaders[0], False
    return next((i for i in leaders if i != correct_index), leaders[0]), True


def tied(probabilities) -> bool:
    top = max(probabilities)
    return sum(1 for p in probabilities if abs(p - top) < TOLERANCE) > 1


def build_verdict(
    debate: Debate,
    probabilities,
    *,
    reason: str,
    judge=None,
    judge_kind: str = Verdict.HUMAN,
    ai_judge: str = "",
    live: bool = True,
    seconds_spent=None,
    client_id: str = "",
    provenance: dict | None = None,
    turn_penalty: bool = True,
    after_turn: int | None = None,
    debater_turns: int | None = None,
    source_rule: dict | None = None,
    **fields,
) -> Verdict:
    """An unsaved Verdict with its chosen answer, correctness and score (bulk writers save many).
    probabilities are in the question's canonical order.

    source_rule (imports only): {"tie_rule": name, "chosen_index", "correct", "score"} - the
    source's own judgment of its verdict, kept as the source made it. Any further keyword is a
    Verdict field (e.g. after_seq, or fields other engineers add)."""
    question = debate.question
    provenance = dict(provenance or {})
    protocol = debate.get_protocol()
    if source_rule is not None:  # the source's numbers as it recorded them, checked by its importer
        canonical = list(probabilities)
        chosen, correct, score = source_rule["chosen_index"], source_rule["correct"], source_rule["score"]
        if source_rule["tie_rule"] is not None:  # None: a re-import whose records name no rule
            provenance["tie_rule"] = source_rule["tie_rule"]
        scoring_rule = source_rule.get("scoring_rule", protocol.scoring_rule)
    else:
        canonical = list(validate_probabilities(probabilities, len(question.answers)))
        chosen, was_tied = chosen_answer(canonical, question.correct_index)
        provenance["tie_rule"] = TIE_RULE
        if was_tied:
            provenance["tie"] = True
        correct = chosen == question.correct_index
        if debater_turns is None:
            debater_turns = debate.turns.exclude(seat=JUDGE).count() if turn_penalty else 0
        scoring_rule = protocol.scoring_rule
        score = scoring.score(
            scoring_rule,
            canonical,
            question.correct_index,
            turns=debater_turns,
            turn_penalty=protocol.turn_penalty if turn_penalty else 0.0,
        )
    if after_turn is None:
        after_turn = debate.turns.count()
    fields.setdefault("after_seq", debate.last_seq)
    return Verdict(
        debate=debate,
        judge=judge,
        judge_kind=judge_kind,
        ai_judge=ai_judge,
        live=live,
        probabilities=canonical,
        chosen_index=chosen,
        correct=correct,
        reason=reason,
        seconds_spent=seconds_spent,
        after_turn=after_turn,
        scoring_rule=scoring_rule,
        score=score,
        client_id=client_id or "",
        provenance=provenance,
        **fields,
    )


def record_verdict(debate: Debate, probabilities, *, completes: bool | None = None, **options):
    """Stores one verdict on a debate locked by the caller and announces it. Returns
    (verdict, events). completes: whether the debate is complete after it (default: a live human
    verdict always; any other when no human judge is seated to give one)."""
    verdict = build_verdict(debate, probabilities, **options)
    verdict.save()
    if completes is None:
        completes = (verdict.live and verdict.judge_kind == Verdict.HUMAN) or not _human_judge_waiting(debate)
    events = []
    if completes and debate.status != Debate.COMPLETE:
        debate.status = Debate.COMPLETE
        events = services.record_events(debate, [Event("verdict_given", "all", {"status": debate.status})])
    live.publish(debate.pk, events)
    if not events:
        transaction.on_commit(lambda: live.notify_experiment(debate.pk), robust=True)
    return verdict, events


def record_many(debates: list[Debate], probabilities: list, options: list[dict]) -> list[Verdict]:
    """Verdicts on many debates nobody watches (self-play), in bulk inside the caller's
    transaction: each debate is complete after its verdict, its event numbered by
    debates.services.number_events like every other event."""
    verdicts = Verdict.objects.bulk_create(
        [build_verdict(d, p, **o) for d, p, o in zip(debates, probabilities, options)]
    )
    events = []
    for debate in debates:
        debate.status = Debate.COMPLETE
        events += services.number_events(debate, [Event("verdict_given", "all", {"status": Debate.COMPLETE})])
    DebateEvent.objects.bulk_create(events)
    Debate.objects.bulk_update(debates, ["status", "last_seq"])
    return verdicts


def _human_judge_waiting(debate: Debate) -> bool:
    return debate.participants.filter(seat=JUDGE, user__isnull=False).exists()
