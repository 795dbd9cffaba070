import json
import re

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import F, JSONField, OuterRef, Subquery
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from . import live, pixel_player, services, snapshots, worker_health
from .action_messages import action_fields
from .models import RESEARCHER, Debate, DebateEvent, Invitation, Participant, has_role
from .protocol import Refused


@login_required
def lobby(request):
    latest_turn_state = (
        DebateEvent.objects.filter(debate=OuterRef("debate"), kind="turn_state").order_by("-seq").values("data")[:1]
    )
    seats = (
        Participant.objects.filter(user=request.user)
        .select_related("debate__question")
        .annotate(turn_state=Subquery(latest_turn_state, output_field=JSONField()))
        .order_by("-debate__created_at")
    )
    for seat in seats:  # "Your turn" badges in the lobby
        seat.my_turn = seat.debate.status == Debate.LIVE and seat.seat in (seat.turn_state or {}).get("waiting_for", [])
        seat.answer_text = seat.debate.question.answers[seat.answer_index] if seat.is_debater else ""
    debating = [s for s in seats if s.is_debater]
    judging = [s for s in seats if s.seat == "judge"]
    observing = [s for s in seats if s.seat == Participant.OBSERVER]
    recent = None
    if has_role(request.user, RESEARCHER):  # a researcher's own space only
        recent = snapshots.managed_debates(request.user).select_related("question").order_by("-created_at")[:50]
    return render(
        request,
        "debates/lobby.html",
        {"debating": debating, "judging": judging, "observing": observing, "recent": recent},
    )


def _viewer_or_403(request, debate):
    viewer = snapshots.viewer_for(debate, request.user)
    if viewer is None:
        raise PermissionDenied("You have no seat in this debate.")
    return viewer


@login_required
def debate_room(request, debate_id):
    debate = get_object_or_404(Debate.objects.select_related("question"), pk=debate_id)
    viewer = _viewer_or_403(request, debate)
    if pixel_player.on_room_opened(debate, viewer):  # image debates that start when their judge arrives
        debate.refresh_from_db()
    state = snapshots.state_for(debate, viewer)
    return render(
        request,
        "debates/room.html",
        {
            "debate": debate,
            "viewer": viewer,
            "state": state,
            "may_start": debate.status == Debate.SCHEDULED and snapshots.manages(debate, request.user),
        },
    )


@login_required
@require_GET
def debate_state(request, debate_id):
    debate = get_object_or_404(Debate.objects.select_related("question"), pk=debate_id)
    viewer = _viewer_or_403(request, debate)
    after = request.GET.get("after")
    if after is not None:
        if not re.fullmatch(r"[0-9]{1,18}", after):  # ASCII digits only: "²".isdigit() is true
            return JsonResponse(
                {"error": {"code": "bad_after", "message": "after must be a sequence number"}}, status=400
            )
        return JsonResponse({"events": snapshots.events_after(debate, viewer, int(after))})
    return JsonResponse(snapshots.state_for(debate, viewer))


@login_required
@require_POST
def debate_action(request, debate_id):
    """HTTP twin of the websocket's speech and feedback messages (same service, same answers)."""
    debate = get_object_or_404(Debate, pk=debate_id)
    if _viewer_or_403(request, debate).participant is None:
        raise PermissionDenied("Only the people seated in this debate act in it.")
    try:
        message = json.loads(request.body or b"{}")
    except (ValueError, RecursionError):  # RecursionError: thousands of nested brackets
        return _refusal(Refused("bad_json", "the body is not valid JSON"))
    if not isinstance(message, dict) or message.get("type") not in ("speech", "feedback"):
        return _refusal(Refused("unknown_type", "type must be speech or feedback"))
    try:
        turn, events = services.submit_action(
            debate.pk,
            request.user,
            kind=message["type"],
            client_id=message.get("client_id") or "",
            **action_fields(message),
        )
    except Refused as refused:
        return _refusal(refused)
    live.publish(debate.pk, events)
    return JsonResponse({"type": "ack", "client_id": message.get("client_id"), "turn_id": turn.pk})


@login_required
@require_POST
def start(request, debate_id):
    if not has_role(request.user, RESEARCHER):
        raise PermissionDenied("Only researchers start debates.")
    debate = get_object_or_404(Debate, pk=debate_id)
    if not snapshots.manages(debate, request.user):
        raise PermissionDenied("Only the researcher who runs this debate starts it.")
    try:
        live.publish(debate.pk, services.start_debate(debate.pk))
    except Refused as refused:
        messages.error(request, refused.message)
    return redirect("debate_room", debate_id=debate.pk)


def _refusal(refused: Refused, status=400):
    return JsonResponse({"error": {"code": refused.code, "message": refused.message}}, status=status)


class JoinForm(UserCreationForm):
    """Sign-up with an optional e-mail address, which is what a password reset is sent to."""

    email = forms.EmailField(required=False, help_text="Optional: lets you reset your password and get notices.")

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")


def join(request, token):
    """Sign-up by invitation link: creates an account with the invitation's role."""
    invitation = Invitation.objects.filter(token=token).first()
    if (
        invitation is None
        or invitation.uses_left == 0
        or (invitation.expires_at and invitation.expires_at < timezone.now())
    ):
        raise Http404("This invitation link is not valid any more.")
    form = JoinForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            updated = Invitation.objects.filter(pk=invitation.pk, uses_left__gt=0).update(uses_left=F("uses_left") - 1)
            if not updated:
                raise Http404("This invitation link has been used up.")
            user = form.save()
            user.groups.add(Group.objects.get_or_create(name=invitation.role)[0])
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        if invitation.experiment_id:  # an experiment's invitation: straight into its study
            request.session["invited_to_experiment"] = invitation.experiment_id
            return redirect("study", experiment_id=invitation.experiment_id)
        return redirect("lobby")
    return render(request, "registration/join.html", {"form": form, "invitation": invitation})


@require_GET
def healthz(request):
    """Database and channel-layer health, for the compose health checks."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001 - any failure is reported, not raised
        checks["database"] = f"error: {error.__class__.__name__}"
    try:
        layer = get_channel_layer()
        async_to_sync(layer.group_send)("healthz", {"type": "healthz.ping"})
        checks["channel_layer"] = "ok"
    except Exception as error:  # noqa: BLE001
        checks["channel_layer"] = f"error: {error.__class__.__name__}"
    checks.update(_worker_check(checks))
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse({"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503)


def _worker_check(checks: dict) -> dict:
    """{"worker": "ok" | why not} in production with the check on; nothing in the embedded default."""
    if settings.RUN_TASKS_IN_PROCESS or not settings.DEBATELAB_WORKER_MAX_AGE:
        return {}
    if checks.get("channel_layer") != "ok":
        return {"worker": "unknown: Redis is unreachable"}
    try:
        problem = worker_health.problem()
    except Exception as error:  # noqa: BLE001
        return {"worker": f"error: {error.__class__.__name__}"}
    return {"worker": f"error: {problem}" if problem else "ok"}
