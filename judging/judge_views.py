"""The judges' pages: the verdict form of a live debate's judge, and offline judging (a finished
debate judged from its transcript by an assigned judge). Both post judging/verdict_form.py's form."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render

from debates import services, snapshots
from debates.models import Debate
from debates.protocol import JUDGE, Refused

from . import crowd, offline, quality
from .models import Assignment, StudyParticipant, Verdict
from .services import submit_verdict
from .verdict_form import even_split, posted_probabilities, recorded_rows, slider_rows, whole_percents


@login_required
def verdict_form(request, debate_id):
    """The judge's final verdict: one probability per answer (shown order), summing to 100%, and a reason."""
    debate = get_object_or_404(Debate.objects.select_related("question"), pk=debate_id)
    viewer = snapshots.viewer_for(debate, request.user)
    if viewer is None or viewer.view != snapshots.JUDGE_VIEW:
        raise PermissionDenied("Only this debate's judge gives its verdict.")
    state = snapshots.state_for(debate, viewer)
    existing = Verdict.objects.filter(debate=debate, judge=request.user).first()
    error = None
    if request.method == "POST":  # the service refuses a second verdict and accepts a retried one
        try:
            probabilities = posted_probabilities(request.POST, len(state["question"]["answers"]))
            study = study_of(debate, request.user)
            if study and not existing:
                quality.check_minimum_time(debate, crowd.study_settings(debate.experiment_version))
            verdict, _ = submit_verdict(
                debate.pk,
                request.user,
                probabilities,
                request.POST.get("reason", ""),
                request.POST.get("seconds_spent"),
                request.POST.get("client_id", ""),
            )
            quality.record_hidden_time(verdict, request.POST.get("hidden_seconds"))
            if study_of(debate, request.user):  # crowd judges go on with their study (answer, score, next step)
                return redirect("study", experiment_id=debate.experiment_version.experiment_id)
            return redirect("verdict_form", debate_id=debate.pk)
        except Refused as refused:
            error = refused.message
    return render(
        request,
        "judging/verdict.html",
        {
            "debate": debate,
            "state": state,
            "verdict": existing,
            "error": error,
            "answers": list(enumerate(state["question"]["answers"])),
            "ready": debate.status == Debate.AWAITING_VERDICT,
            "posted": request.POST,
            "sliders": slider_rows(
                state,
                _last_report_percents(state) or even_split(len(state["question"]["answers"])),
                request.POST if error else None,
            ),
            "recorded": recorded_rows(debate, state, existing) if existing else None,
            "transcript": _transcript_rows(state),
            "time_spent": _duration(existing.seconds_spent) if existing and existing.seconds_spent else "",
            "study": study_of(debate, request.user),
        },
        status=400 if error else 200,
    )


def study_of(debate, user):
    """The crowd study this judge takes part in through this debate, if any."""
    if debate.experiment_version_id is None:
        return None
    return StudyParticipant.objects.filter(experiment_id=debate.experiment_version.experiment_id, user=user).first()


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    parts = [f"{minutes} minute{'s' if minutes != 1 else ''}"] if minutes else []
    if seconds or not minutes:
        parts.append(f"{seconds} second{'s' if seconds != 1 else ''}")
    return " ".join(parts)


def _last_report_percents(state) -> list[int] | None:
    """The judge's latest probability report in the debate, in whole percentages."""
    reports = [t["probabilities"] for t in state["turns"] if t["seat"] == "judge" and t.get("probabilities")]
    if not reports or len(reports[-1]) != len(state["question"]["answers"]):
        return None
    return whole_percents(reports[-1])


def _transcript_rows(state):
    names = {seat["seat"]: seat["name"] for seat in state["seats"]}
    rows = []
    for turn in state["turns"]:
        row = dict(turn, who="Judge (you)" if turn["seat"] == "judge" else names.get(turn["seat"], turn["seat"]))
        row["percents"] = [
            (answer, round(p * 100)) for answer, p in zip(state["question"]["answers"], turn.get("probabilities") or [])
        ]
        rows.append(row)
    return rows


# Offline judging ------------------------------------------------------------------------------


@login_required
def offline_judging(request, assignment_id):
    """The offline judge's page: the finished debate's transcript as the live judge saw it, revealed one
    debater turn at a time with probabilities after each (step by step) or whole (all at once), then
    the final verdict. Only the assigned judge may open it."""
    assignment = get_object_or_404(Assignment.objects.select_related("debate__question", "verdict"), pk=assignment_id)
    if assignment.judge_id != request.user.pk:
        raise PermissionDenied("This offline judging assignment belongs to another judge.")
    error = None
    if request.method == "POST":
        try:
            _act(request, assignment)
            return redirect("offline_judging", assignment_id=assignment.pk)
        except Refused as refused:
            error = refused.message
        assignment.refresh_from_db()
    else:
        offline.mark_opened(assignment)
    state = offline.transcript_state(assignment)
    done = assignment.status == Assignment.DONE
    reports = list(assignment.reports.all())
    return render(
        request,
        "judging/offline.html",
        {
            "assignment": assignment,
            "debate": assignment.debate,
            "state": state,
            "error": error,
            "done": done,
            "transcript": _offline_transcript_rows(state),
            "steps": state["steps"],
            "ready": not done and offline.ready_for_verdict(assignment),
            "sliders": slider_rows(state, _start_values(assignment, reports), request.POST if error else None),
            "reports": [_report_row(assignment, state, r) for r in reports],
            "recorded": recorded_rows(assignment.debate, state, assignment.verdict) if done else None,
            "posted": request.POST if error else {},
            "study": study_of(assignment.debate, request.user),
        },
        status=400 if error else 200,
    )


def _act(request, assignment):
    probabilities = posted_probabilities(request.POST, len(assignment.debate.question.answers))
    if request.POST.get("action") == "step":
        try:
            step = int(request.POST.get("step", ""))
        except ValueError:
            raise Refused("wrong_step", "the step number is missing") from None
        offline.report_step(assignment.pk, request.user, step, probabilities)
    else:
        offline.submit_offline_verdict(
            assignment.pk,
            request.user,
            probabilities,
            request.POST.get("reason", ""),
            request.POST.get("seconds_spent"),
            request.POST.get("client_id", ""),
        )


def _names(state):
    return {seat["seat"]: seat["name"] for seat in state["seats"]}


def _offline_transcript_rows(state):
    names = _names(state)
    return [
        dict(turn, who="Live judge" if turn["seat"] == JUDGE else names.get(turn["seat"], turn["seat"]))
        for turn in state["turns"]
    ]


def _start_values(assignment, reports):
    """Sliders start from the last step report, else an even split."""
    if reports:
        return whole_percents(services.to_display(assignment.debate, reports[-1].probabilities))
    return even_split(len(assignment.debate.question.answers))


def _report_row(assignment, state, report):
    shown = services.to_display(assignment.debate, report.probabilities)
    return {"step": report.step, "percents": [(a, round(p * 100)) for a, p in zip(state["question"]["answers"], shown)]}
