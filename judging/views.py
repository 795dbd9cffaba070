from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render

from debates import live, snapshots
from debates.models import Debate
from debates.protocol import Refused

from .models import Verdict
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
    if request.method == "POST" and existing is None:
        try:
            probabilities = [float(request.POST.get(f"p{i}", "")) / 100 for i in range(len(state["question"]["answers"]))]
        except ValueError:
            probabilities = None
        try:
            if probabilities is None:
                raise Refused("bad_probabilities", "give a percentage for every answer")
            verdict, events = submit_verdict(debate.pk, request.user, probabilities, request.POST.get("reason", ""),
                                             request.POST.get("seconds_spent"), request.POST.get("client_id", ""))
            live.publish(debate.pk, events)
            return redirect("verdict_form", debate_id=debate.pk)
        except Refused as refused:
            error = refused.message
    return render(request, "judging/verdict.html", {
        "debate": debate, "state": state, "verdict": existing, "error": error,
        "answers": list(enumerate(state["question"]["answers"])),
        "ready": debate.status == Debate.AWAITING_VERDICT, "posted": request.POST,
    }, status=400 if error else 200)
