"""Quality checks for crowd judges, kept apart from verdict recording (judging.services): the study's
minimum time per verdict, the time the judge's pages were hidden (recorded with the verdict), and
the per-participant quality figures shown on the experiment page and in the study export."""

from django.db.models import Max, Min, Sum
from django.utils import timezone

from debates.protocol import Refused

from .crowd import gold_verdicts, study_settings
from .models import StudyParticipant, Verdict

MAX_HIDDEN_SECONDS = 7 * 24 * 3600


def check_minimum_time(debate, study: dict | None) -> None:
    """Refuses a verdict given sooner after the debate started than the study's min_verdict_seconds
    (measured on the server, so a judge cannot shorten it)."""
    minimum = (study or {}).get("min_verdict_seconds")
    if not minimum or debate.started_at is None:
        return
    spent = (timezone.now() - debate.started_at).total_seconds()
    if spent < minimum:
        raise Refused(
            "too_fast",
            f"take at least {minimum} seconds over a debate before your verdict "
            f"({round(minimum - spent)} seconds to go)",
        )


def hidden_seconds(value) -> float | None:
    """The hidden time a page reported: a number of seconds, or None when missing or unusable."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if 0 <= seconds <= MAX_HIDDEN_SECONDS else None


def record_hidden_time(verdict: Verdict, value) -> None:
    seconds = hidden_seconds(value)
    if seconds is not None and verdict.hidden_seconds is None:
        Verdict.objects.filter(pk=verdict.pk, hidden_seconds=None).update(hidden_seconds=seconds)


def participant_quality(participant: StudyParticipant, version) -> dict:
    verdicts = Verdict.objects.filter(debate__experiment_version=version, judge=participant.user)
    figures = verdicts.aggregate(
        hidden=Sum("hidden_seconds"), fastest=Min("seconds_spent"), slowest=Max("seconds_spent")
    )
    practice = participant.responses.get("practice") or {}
    gold = gold_verdicts(participant, study_settings(version))
    return {
        "gold": gold.count(),
        "gold_correct": gold.filter(correct=True).count(),
        "verdicts": verdicts.count(),
        "correct": verdicts.filter(correct=True).count(),
        "quiz_attempts": participant.quiz_attempts,
        "practice_correct": practice.get("correct"),
        "hidden_seconds": round(figures["hidden"] or 0, 1),
        "fastest_verdict_seconds": figures["fastest"],
    }


def quality_label(figures: dict) -> str:
    """One line for the researcher's table."""
    parts = [f"{figures['correct']}/{figures['verdicts']} correct", f"quiz tries {figures['quiz_attempts']}"]
    if figures["gold"]:
        parts.append(f"gold {figures['gold_correct']}/{figures['gold']}")
    if figures["practice_correct"] is not None:
        parts.append("practice right" if figures["practice_correct"] else "practice wrong")
    if figures["hidden_seconds"]:
        parts.append(f"hidden {figures['hidden_seconds']:g} s")
    return ", ".join(parts)
