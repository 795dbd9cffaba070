"""Offline judging: further judges judge a finished debate from its transcript, step by step (one
debater turn revealed at a time, probabilities after each, stored in order) or all at once, and
then give a final verdict (a Verdict with live=False).

An offline judge sees what the live judge saw (debates.snapshots, judge's view): never the hidden
material, the correct answer, the honest side or anyone's private notes. The live judge's own
probabilities are left out too, so offline judgments stay independent of the live one; their
comments stay, because the debaters answer them.

Who may judge what: a person judges each question at most once (live, offline or by any verdict)
and never a question they debated or observed (observers read the hidden material)."""

import logging

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from debates import live, snapshots
from debates.models import JUDGE_ROLE, Debate, Participant
from debates.protocol import JUDGE, Refused, validate_probabilities
from debates.services import to_canonical

from .models import Assignment, StepReport, Verdict
from .services import checked_judgment
from .verdicts import record_verdict

log = logging.getLogger(__name__)
FINISHED = (Debate.AWAITING_VERDICT, Debate.COMPLETE)
MODES = (Assignment.STEPWISE, Assignment.ALL_AT_ONCE)


# ---------------------------------------------------------------------------------------------
# Who may judge a question


def refusal_for(judge, question_id: int) -> Refused | None:
    """Why `judge` may not judge this question, or None when they may."""
    seats = Participant.objects.filter(user=judge, debate__question_id=question_id)
    if seats.exclude(seat__in=(JUDGE, Participant.OBSERVER)).exists():
        return Refused("debated_question", "this person debated this question, so they may not judge it")
    if seats.filter(seat=Participant.OBSERVER).exists():
        return Refused("saw_hidden_material", "this person observed a debate on this question and saw its passage")
    if (
        seats.filter(seat=JUDGE).exists()
        or Assignment.objects.filter(judge=judge, debate__question_id=question_id).exists()
        or Verdict.objects.filter(judge=judge, debate__question_id=question_id).exists()
    ):
        return Refused("judged_question", "this person already judges this question (each person judges it once)")
    return None


def assign(debate_id: int, judge, mode: str = Assignment.STEPWISE) -> Assignment:
    """One offline judging assignment. Refused for an unfinished debate, an unknown mode or a judge
    the rules above exclude; nothing is stored then."""
    if mode not in MODES:
        raise Refused("bad_mode", f"offline judging is {' or '.join(MODES)}")
    with transaction.atomic():
        # One judge's assignments are decided one at a time, so two debates on the same question
        # finishing together cannot both go to them.
        get_user_model().objects.select_for_update().get(pk=judge.pk)
        debate = Debate.objects.select_related("question").get(pk=debate_id)
        if debate.status not in FINISHED:
            raise Refused("debate_not_over", "offline judges judge finished debates")
        refusal = refusal_for(judge, debate.question_id)
        if refusal:
            raise refusal
        first_step = 1 if mode == Assignment.STEPWISE and step_count(debate) else 0
        assignment = Assignment.objects.create(debate=debate, judge=judge, mode=mode, position=first_step)
        live.notify_users([judge.pk], {"kind": "lobby", "debate": debate.pk})  # their lobby lists it
        return assignment


def assign_offline_judges(debate_id: int) -> list[Assignment]:
    """For a finished debate of an experiment whose judges.offline is stepwise or all_at_once and
    whose judges.per_debate > 1: assignments for the judgments still wanted (the live judge counts
    as one), from the experiment's judge pool or else everyone with the judge role, least loaded
    first. Idempotent: a second call creates only what is still missing."""
    with transaction.atomic():
        debate = (
            Debate.objects.select_for_update(of=("self",))
            .select_related("experiment_version")
            .filter(pk=debate_id)
            .first()
        )
        if debate is None or debate.status not in FINISHED or debate.experiment_version is None:
            return []
        judges = debate.experiment_version.definition.get("judges") or {}
        mode, per_debate = judges.get("offline", "none"), judges.get("per_debate", 1)
        if mode not in MODES or per_debate <= 1:
            return []
        if debate.experiment_version.definition.get("study"):
            return []  # a crowd study's further judgments go to people in its waiting room (judging.crowd)
        live_judge = debate.participants.filter(seat=JUDGE, user__isnull=False).exists()
        return fill(debate, per_debate - int(live_judge), judges.get("pool"), mode)


def fill(debate: Debate, wanted: int, pool, mode: str) -> list[Assignment]:
    """Assignments until the debate has `wanted` offline judgments assigned, for the least loaded
    eligible judges of `pool` (usernames; None: everyone with the judge role). Returns the new ones."""
    missing = wanted - debate.offline_assignments.count()
    created = []
    for judge in candidates(pool) if missing > 0 else []:
        if len(created) >= missing:
            break
        try:
            created.append(assign(debate.pk, judge, mode))
        except Refused:
            continue
    return created


def candidates(pool):
    users = get_user_model().objects.filter(is_active=True)
    users = users.filter(username__in=pool) if pool else users.filter(groups__name=JUDGE_ROLE)
    open_work = Count("offline_assignments", filter=~Q(offline_assignments__status=Assignment.DONE))
    return list(users.annotate(open_work=open_work).order_by("open_work", "pk"))


# ---------------------------------------------------------------------------------------------
# What the offline judge sees


def judge_viewer(debate: Debate, user) -> snapshots.Viewer:
    return snapshots.Viewer(snapshots.JUDGE_VIEW, None, user=user, blind=bool(snapshots.blinding_of(debate)["aliases"]))


def step_count(debate: Debate) -> int:
    """Steps of step-by-step judging: one per debater turn (speeches and timed-out turns)."""
    return debate.turns.exclude(seat=JUDGE).count()


def visible_turns(turns: list[dict], debater_turns: int) -> list[dict]:
    """The transcript up to the `debater_turns`-th debater turn, with the judge's comments that
    come before the next one."""
    shown, seen = [], 0
    for turn in turns:
        if turn["seat"] != JUDGE:
            if seen == debater_turns:
                break
            seen += 1
        shown.append(turn)
    return shown


def transcript_state(assignment: Assignment) -> dict:
    """The role-filtered state of the debate as this offline judge may see it now."""
    debate = assignment.debate
    state = snapshots.state_for(debate, judge_viewer(debate, assignment.judge))
    turns = [_without_probabilities(t) for t in state["turns"]]
    turns = [t for t in turns if t["kind"] != "feedback" or t.get("text")]
    if assignment.mode == Assignment.STEPWISE and assignment.status != Assignment.DONE:
        turns = visible_turns(turns, assignment.position)
    state["turns"] = turns
    state["quotes"] = [
        dict(q, round=t["round"], seat=t["seat"]) for t in turns for q in t.get("payload", {}).get("quotes", [])
    ]
    state["judge_question"] = None
    state["steps"] = step_count(debate)
    return state


def _without_probabilities(turn: dict) -> dict:
    return {k: v for k, v in turn.items() if k not in ("probabilities", "end_debate")}


def ready_for_verdict(assignment: Assignment) -> bool:
    if assignment.mode == Assignment.ALL_AT_ONCE:
        return True
    return assignment.reports.count() >= step_count(assignment.debate)


def mark_opened(assignment: Assignment) -> None:
    Assignment.objects.filter(pk=assignment.pk, started_at__isnull=True).update(started_at=timezone.now())


# ---------------------------------------------------------------------------------------------
# Writing


def _locked_assignment(assignment_id: int, user) -> Assignment:
    assignment = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("debate__question")
        .filter(pk=assignment_id)
        .first()
    )
    if assignment is None or assignment.judge_id != user.pk:
        raise Refused("not_your_assignment", "this offline judging assignment is not yours")
    return assignment


def report_step(assignment_id: int, user, step: int, probabilities) -> StepReport:
    """Probabilities (in the shown answer order) after step `step`; reveals the next debater turn.
    Sending the same step again returns the stored report (a double submission changes nothing)."""
    with transaction.atomic():
        assignment = _locked_assignment(assignment_id, user)
        if assignment.mode != Assignment.STEPWISE:
            raise Refused("not_stepwise", "this assignment is judged all at once: give your verdict")
        existing = assignment.reports.filter(step=step).first()
        if existing:
            return existing
        if assignment.status == Assignment.DONE:
            raise Refused("already_judged", "you have already given your verdict on this debate")
        if step != assignment.position or step == 0:
            raise Refused("wrong_step", f"this is step {assignment.position}, not step {step}")
        debate = assignment.debate
        canonical = list(validate_probabilities(to_canonical(debate, probabilities), len(debate.question.answers)))
        shown = transcript_state(assignment)["turns"]
        report = StepReport.objects.create(
            assignment=assignment, step=step, turns_shown=len(shown), probabilities=canonical
        )
        assignment.position = min(step + 1, step_count(debate))
        assignment.status = Assignment.IN_PROGRESS
        assignment.started_at = assignment.started_at or report.created_at
        assignment.save(update_fields=["position", "status", "started_at"])
        return report


def submit_offline_verdict(
    assignment_id: int, user, probabilities, reason: str, seconds_spent=None, client_id: str = "", **fields
) -> Verdict:
    """The offline judge's final verdict (probabilities in the shown answer order). Offline judges
    do not choose how long the debate runs, so no per-turn penalty is taken from their score."""
    with transaction.atomic():
        assignment = _locked_assignment(assignment_id, user)
        if assignment.status == Assignment.DONE:
            if client_id and assignment.verdict and assignment.verdict.client_id == client_id:
                return assignment.verdict
            raise Refused("already_judged", "you have already given your verdict on this debate")
        if not ready_for_verdict(assignment):
            raise Refused("steps_left", "give your probabilities for every turn first; the verdict comes last")
        debate = assignment.debate
        canonical, reason, seconds = checked_judgment(debate, probabilities, reason, seconds_spent, client_id)
        verdict, _ = record_verdict(
            debate,
            canonical,
            judge=user,
            live=False,
            reason=reason,
            seconds_spent=seconds,
            client_id=client_id,
            turn_penalty=False,
            completes=False,
            provenance={
                "offline": {"mode": assignment.mode, "assignment": assignment.pk, "steps": assignment.reports.count()}
            },
            **fields,
        )
        assignment.verdict, assignment.status, assignment.finished_at = verdict, Assignment.DONE, timezone.now()
        assignment.save(update_fields=["verdict", "status", "finished_at"])
        return verdict
