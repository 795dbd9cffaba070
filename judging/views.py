from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render

from debates import services, snapshots
from debates.models import Debate
from debates.protocol import Refused

from . import crowd, quality
from .models import StudyParticipant, Verdict
from .services import submit_verdict


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
            probabilities = [float(request.POST.get(f"p{i}", "")) / 100 for i in range(len(state["question"]["answers"]))]
        except ValueError:
            probabilities = None
        try:
            if probabilities is None:
                raise Refused("bad_probabilities", "give a percentage for every answer")
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
        "sliders": _slider_rows(state, request.POST if error else None),
        "recorded": _recorded_rows(debate, state, existing) if existing else None,
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


def _argued_by(state, shown_index):
    return [seat["name"] for seat in state["seats"] if seat.get("answer") == shown_index]


def _slider_rows(state, posted):
    """One row per answer in shown order, starting from what was just posted, else the judge's last
    probability report in the debate, else an even split."""
    answers = state["question"]["answers"]
    start = _last_report_percents(state) or [100 // len(answers) + (1 if i < 100 % len(answers) else 0)
                                              for i in range(len(answers))]
    rows = []
    for i, answer in enumerate(answers):
        value = start[i]
        if posted is not None:
            try:
                value = max(0, min(100, round(float(posted.get(f"p{i}", value)))))
            except (ValueError, OverflowError):  # not a number, NaN, or infinite
                pass
        rows.append({"index": i, "answer": answer, "argued_by": _argued_by(state, i), "value": value})
    return rows


def _last_report_percents(state) -> list[int] | None:
    """The judge's latest feedback in whole percentages adding up to 100 (largest remainders win)."""
    reports = [t["probabilities"] for t in state["turns"] if t["seat"] == "judge" and t.get("probabilities")]
    if not reports or len(reports[-1]) != len(state["question"]["answers"]):
        return None
    shares = [p * 100 for p in reports[-1]]
    percents = [int(s) for s in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(shares[i] - percents[i]), i))
    for i in by_remainder[:100 - sum(percents)]:
        percents[i] += 1
    return percents


def _recorded_rows(debate, state, verdict):
    """The stored verdict in the order the judge saw the answers (no correctness, no score)."""
    shown = services.to_display(debate, verdict.probabilities)
    chosen_shown = debate.shown_answer_order().index(verdict.chosen_index)
    return [{"answer": answer, "percent": round(p * 100, 1), "chosen": i == chosen_shown,
             "argued_by": _argued_by(state, i)} for i, (answer, p) in enumerate(zip(state["question"]["answers"], shown))]


def _transcript_rows(state):
    names = {seat["seat"]: seat["name"] for seat in state["seats"]}
    rows = []
    for turn in state["turns"]:
        row = dict(turn, who="Judge (you)" if turn["seat"] == "judge" else names.get(turn["seat"], turn["seat"]))
        row["percents"] = [(answer, round(p * 100)) for answer, p in
                           zip(state["question"]["answers"], turn.get("probabilities") or [])]
        rows.append(row)
    return rows


