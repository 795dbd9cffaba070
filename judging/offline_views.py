"""The offline judge's page: the finished debate's transcript as the live judge saw it, revealed one
debater turn at a time with probabilities after each (step by step) or whole (all at once), then
the final verdict. Only the assigned judge may open it."""
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render

from debates import services
from debates.protocol import JUDGE, Refused

from . import offline
from .models import Assignment
from .verdict_form import even_split, posted_probabilities, recorded_rows, slider_rows, whole_percents
from .judge_views import study_of


@login_required
def offline_judging(request, assignment_id):
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
    return render(request, "judging/offline.html", {
        "assignment": assignment, "debate": assignment.debate, "state": state, "error": error, "done": done,
        "transcript": _transcript_rows(state), "steps": state["steps"],
        "ready": not done and offline.ready_for_verdict(assignment),
        "sliders": slider_rows(state, _start_values(assignment, reports), request.POST if error else None),
        "reports": [_report_row(assignment, state, r) for r in reports],
        "recorded": recorded_rows(assignment.debate, state, assignment.verdict) if done else None,
        "posted": request.POST if error else {},
        "study": study_of(assignment.debate, request.user),
    }, status=400 if error else 200)


def _act(request, assignment):
    probabilities = posted_probabilities(request.POST, len(assignment.debate.question.answers))
    if request.POST.get("action") == "step":
        try:
            step = int(request.POST.get("step", ""))
        except ValueError:
            raise Refused("wrong_step", "the step number is missing") from None
        offline.report_step(assignment.pk, request.user, step, probabilities)
    else:
        offline.submit_offline_verdict(assignment.pk, request.user, probabilities, request.POST.get("reason", ""),
                                       request.POST.get("seconds_spent"), request.POST.get("client_id", ""))


def _names(state):
    return {seat["seat"]: seat["name"] for seat in state["seats"]}


def _transcript_rows(state):
    names = _names(state)
    return [dict(turn, who="Live judge" if turn["seat"] == JUDGE else names.get(turn["seat"], turn["seat"]))
            for turn in state["turns"]]


def _start_values(assignment, reports):
    """Sliders start from the last step report, else an even split."""
    if reports:
        return whole_percents(services.to_display(assignment.debate, reports[-1].probabilities))
    return even_split(len(assignment.debate.question.answers))


def _report_row(assignment, state, report):
    shown = services.to_display(assignment.debate, report.probabilities)
    return {"step": report.step, "percents": [(a, round(p * 100)) for a, p in zip(state["question"]["answers"], shown)]}
