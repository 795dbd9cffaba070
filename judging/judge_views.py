from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render

from debates import snapshots
from debates.models import Debate
from debates.protocol import Refused

from . import crowd, quality
from .models import StudyParticipant, Verdict
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
            verdict, _ = submit_verdict(debate.pk, request.user, probabilities, request.POST.get("reason", ""),
                                             request.POST.get("seconds_spent"), request.POST.get("client_id", ""))
            quality.record_hidden_time(verdict, request.POST.get("hidden_seconds"))
            if study_of(debate, request.user):  # crowd judges go on with their study (answer, score, next step)
                return redirect("study", experiment_id=debate.experiment_version.experiment_id)
            return redirect("verdict_form", debate_id=debate.pk)
        except Refused as refused:
            error = refused.message
    return render(request, "judging/verdict.html", {
        "debate": debate, "state": state, "verdict": existing, "error": error,
        "answers": list(enumerate(state["question"]["answers"])),
        "ready": debate.status == Debate.AWAITING_VERDICT, "posted": request.POST,
        "sliders": slider_rows(state, _last_report_percents(state) or even_split(len(state["question"]["answers"])),
                               request.POST if error else None),
        "recorded": recorded_rows(debate, state, existing) if existing else None,
        "transcript": _transcript_rows(state),
        "time_spent": _duration(existing.seconds_spent) if existing and existing.seconds_spent else "",
        "study": study_of(debate, request.user),
    }, status=400 if error else 200)


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
        row["percents"] = [(answer, round(p * 100)) for answer, p in
                           zip(state["question"]["answers"], turn.get("probabilities") or [])]
        rows.append(row)
    return rows


