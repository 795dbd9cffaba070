"""Quality checks for crowd judges, kept apart from verdict recording (judging.services): the study's
minimum time per verdict, the time the judge's pages were hidden (recorded with the verdict), and
the per-participant quality figures shown on the experiment page and in the study export."""

from django.db.models import Max, Min, Sum
from django.utils import timezone

from debates.protocol import Refused

from .crowd import gold_ids, gold_verdicts, study_settings
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


# ---------------------------------------------------------------------------------------------
# Quality with each verdict in the main export (judging.export's `quality` field): the judge's
# participation in the crowd study the verdict belongs to (the study of the debate's experiment, or
# the study that used the debate as gold). None for judges outside any study. A Python twin for the
# embedded SQLite default and one SQL expression for PostgreSQL's streamed export; the tests hold
# them to the same answers.

QUALITY_KEYS = (
    "study_status",
    "study_outcome",
    "excluded",
    "gold_check",
    "gold_judged",
    "gold_correct",
    "practice_correct",
    "quiz_attempts",
)


def verdict_quality(verdict: Verdict) -> dict | None:
    candidates = StudyParticipant.objects.filter(user_id=verdict.judge_id).select_related("experiment")
    own_experiment = verdict.debate.experiment_version.experiment_id if verdict.debate.experiment_version_id else None
    for participant in sorted(candidates, key=lambda p: p.experiment_id != own_experiment):
        study = study_settings(_started_version(participant.experiment))
        is_gold = verdict.debate_id in gold_ids(study)
        if participant.experiment_id != own_experiment and not is_gold:
            continue
        gold = gold_verdicts(participant, study)
        return {
            "study_status": participant.status,
            "study_outcome": participant.outcome or None,
            "excluded": participant.status == StudyParticipant.SCREENED_OUT,
            "gold_check": is_gold,
            "gold_judged": gold.count(),
            "gold_correct": gold.filter(correct=True).count(),
            "practice_correct": (participant.responses.get("practice") or {}).get("correct"),
            "quiz_attempts": participant.quiz_attempts,
        }
    return None


def _started_version(experiment):
    return experiment.versions.exclude(frozen_at=None).order_by("-number").first()


def verdict_quality_sql(verdict: str = "v", debate: str = "d", experiment_version: str = "ev") -> str:
    """verdict_quality as a PostgreSQL expression (a json object or NULL) over the export's aliases."""
    gold = """COALESCE((SELECT x.definition->'study'->'gold'->'debates' FROM debates_experimentversion x
                WHERE x.experiment_id = sp.experiment_id AND x.frozen_at IS NOT NULL
                ORDER BY x.number DESC LIMIT 1), '[]'::jsonb)"""
    return f"""(SELECT json_build_object(
        'study_status', sp.status, 'study_outcome', NULLIF(sp.outcome, ''),
        'excluded', sp.status = '{StudyParticipant.SCREENED_OUT}',
        'gold_check', jsonb_typeof(sg.gold) = 'array' AND sg.gold @> to_jsonb({debate}.id),
        'gold_judged', (SELECT count(*) FROM judging_verdict g WHERE g.judge_id = sp.user_id
                        AND jsonb_typeof(sg.gold) = 'array' AND sg.gold @> to_jsonb(g.debate_id)),
        'gold_correct', (SELECT count(*) FROM judging_verdict g WHERE g.judge_id = sp.user_id AND g.correct
                        AND jsonb_typeof(sg.gold) = 'array' AND sg.gold @> to_jsonb(g.debate_id)),
        'practice_correct', (sp.responses->'practice'->>'correct')::boolean,
        'quiz_attempts', sp.quiz_attempts)
      FROM judging_studyparticipant sp CROSS JOIN LATERAL (SELECT {gold} AS gold) sg
      WHERE sp.user_id = {verdict}.judge_id
        AND (sp.experiment_id IS NOT DISTINCT FROM {experiment_version}.experiment_id
             OR (jsonb_typeof(sg.gold) = 'array' AND sg.gold @> to_jsonb({debate}.id)))
      ORDER BY sp.experiment_id IS NOT DISTINCT FROM {experiment_version}.experiment_id DESC
      LIMIT 1)"""
