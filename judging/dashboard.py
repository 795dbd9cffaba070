"""An experiment's live dashboard: debates by status, verdicts in, progress towards the target and
the debates in progress. The same summary renders the page and every websocket update
(judging.consumers.ExperimentConsumer), so the two never disagree."""

from django.db.models import Count, JSONField, OuterRef, Q, Subquery
from django.urls import reverse

from debates.models import Debate, DebateEvent, Experiment

from .models import Assignment, Verdict

IN_PROGRESS_SHOWN = 50


def summary(experiment: Experiment) -> dict:
    debates = Debate.objects.filter(experiment_version__experiment=experiment)
    by_status = dict(debates.values_list("status").annotate(n=Count("id")).order_by())
    verdicts = Verdict.objects.filter(debate__experiment_version__experiment=experiment)
    counted = verdicts.aggregate(
        all_verdicts=Count("id"),
        live_verdicts=Count("id", filter=Q(live=True)),
        offline_verdicts=Count("id", filter=Q(live=False, judge_kind=Verdict.HUMAN)),
        ai_verdicts=Count("id", filter=Q(judge_kind=Verdict.AI)),
    )
    counts = {
        "total": counted["all_verdicts"],
        "live": counted["live_verdicts"],
        "offline": counted["offline_verdicts"],
        "ai": counted["ai_verdicts"],
        "people": counted["all_verdicts"] - counted["ai_verdicts"],
    }
    assignments = dict(
        Assignment.objects.filter(debate__experiment_version__experiment=experiment)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    versions = [
        _version(v)
        for v in experiment.versions.annotate(
            debate_count=Count("debates", distinct=True),
            verdict_count=Count("debates__verdicts", distinct=True),
            complete=Count("debates", filter=Q(debates__status=Debate.COMPLETE), distinct=True),
        ).order_by("-number")
    ]
    current = next((v for v in versions if v["started"]), versions[0] if versions else None)
    latest_turn_state = (
        DebateEvent.objects.filter(debate=OuterRef("pk"), kind="turn_state").order_by("-seq").values("data")[:1]
    )
    in_progress = (
        debates.filter(status__in=(Debate.SCHEDULED, Debate.LIVE, Debate.AWAITING_VERDICT))
        .select_related("question")
        .annotate(turn_state=Subquery(latest_turn_state, output_field=JSONField()))
        .order_by("id")[:IN_PROGRESS_SHOWN]
    )
    return {
        "type": "summary",
        "experiment": experiment.pk,
        "debates": sum(by_status.values()),
        "by_status": [
            {"status": status, "label": label, "count": by_status.get(status, 0)} for status, label in Debate.STATUSES
        ],
        "verdicts": counts,
        "offline_assignments": {status: assignments.get(status, 0) for status, _ in Assignment.STATUSES},
        "current_version": current,
        "versions": versions,
        "in_progress": [_debate_row(d) for d in in_progress],
        "in_progress_total": debates.filter(
            status__in=(Debate.SCHEDULED, Debate.LIVE, Debate.AWAITING_VERDICT)
        ).count(),
    }


def _version(version) -> dict:
    target = (version.definition or {}).get("target_verdicts")
    return {
        "number": version.number,
        "started": version.frozen_at is not None,
        "frozen_at": version.frozen_at.isoformat() if version.frozen_at else None,
        "debates": version.debate_count,
        "complete": version.complete,
        "verdicts": version.verdict_count,
        "target": target,
        "progress": round(min(1.0, version.verdict_count / target), 4) if target else None,
    }


def _debate_row(debate: Debate) -> dict:
    latest = debate.turn_state or {}
    return {
        "id": debate.pk,
        "url": reverse("debate_room", args=[debate.pk]),
        "status": debate.status,
        "protocol": debate.protocol_name,
        "question": debate.question.text[:120],
        "round": latest.get("round"),
        "waiting_for": latest.get("waiting_for") or [],
    }
