"""Several judges per debate (issue 11, item 3): when people race for the same seats, a study gets
exactly K judgments per debate and never more, and nobody judges a question they debated or judged.
Real concurrent transactions on PostgreSQL: each thread is a web request with its own connection."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from debates import services
from debates.models import Debate, Participant
from judging import crowd
from judging.models import Assignment, StudyParticipant
from judging.services import submit_verdict
from tests.factories import dataset_questions, started_study, study_file

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]

STUDY = study_file(
    "Racing study",
    "race-unit",
    pool=("rdeb1", "rdeb2"),
    judges="""\
        per_debate: PER_DEBATE
        offline: all_at_once
    """,
    study="""\
        platform: prolific
        wait_limit_seconds: 60
        on_wait_limit: offline
    """,
)


def together(functions):
    """Runs the functions at once, each in its own thread and database connection."""
    start = threading.Barrier(len(functions))
    results, errors = [None] * len(functions), []

    def run(i, function):
        try:
            start.wait()
            results[i] = function()
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


def make_study(make_user, questions: int, per_debate: int):
    owner = make_user("rory", "researcher")
    make_user("rdeb1", "debater")
    make_user("rdeb2", "debater")
    dataset_questions("race-unit", questions, text=lambda i: f"Race question {i}?")
    return started_study(owner, STUDY.replace("PER_DEBATE", str(per_debate)))


def qualified(study, count: int) -> list[StudyParticipant]:
    people = []
    for i in range(count):
        participant = crowd.enter(study, crowd.Entry("prolific", f"RACER{i}"))
        people.append(crowd.skip_empty_steps(participant, crowd.study_settings(crowd.study_version(study))))
    return people


def test_racing_judges_fill_each_live_seat_once(make_user):
    study = make_study(make_user, questions=3, per_debate=1)
    people = qualified(study, 8)
    results = together([lambda p=p: crowd.progress(p).status for p in people])
    assert sorted(results) == ["judging"] * 3 + ["waiting"] * 5
    judges = Participant.objects.filter(seat="judge", debate__experiment_version__experiment=study)
    assert judges.count() == 3 and judges.values("debate").distinct().count() == 3


def finish_with_verdict(debate: Debate) -> None:
    while not (engine := Debate.objects.get(pk=debate.pk).engine()).finished:
        seat = engine.expected_seats()[0]
        services.submit_action(debate.pk, debate.participants.get(seat=seat).user, kind="speech", text="Argued.")
    Debate.objects.filter(pk=debate.pk).update(started_at=timezone.now() - timedelta(minutes=5))
    submit_verdict(debate.pk, debate.participants.get(seat="judge").user, [0.7, 0.3], "Judged.")


def test_racing_judges_get_exactly_k_judgments_per_debate_and_never_their_own_question(make_user):
    k = 3
    study = make_study(make_user, questions=2, per_debate=k)
    live = qualified(study, 2)
    for participant in live:
        assert crowd.progress(participant).status == "judging"
    for debate in Debate.objects.filter(experiment_version__experiment=study):
        finish_with_verdict(debate)
    racers = qualified(study, 10)
    # Everyone races, and the live judges' pages ask again at the same moment (a stale copy, as a
    # second tab's request would hold).
    results = together([lambda p=p: crowd.progress(p).status for p in racers + live])
    assignments = Assignment.objects.filter(debate__experiment_version__experiment=study)
    per_debate = {
        d.pk: assignments.filter(debate=d).count() for d in Debate.objects.filter(experiment_version__experiment=study)
    }
    assert per_debate == {pk: k - 1 for pk in per_debate}  # the live judge and k - 1 more, never more
    assert results.count("judging") == 2 * (k - 1) and results[-2:] == ["completed", "completed"]
    for assignment in assignments.select_related("debate"):
        seats = Participant.objects.filter(user=assignment.judge, debate__question=assignment.debate.question)
        assert not seats.exists()
        assert assignments.filter(judge=assignment.judge, debate__question=assignment.debate.question).count() == 1
    # Past the wait limit, the rest are released rather than given a judgment beyond K.
    StudyParticipant.objects.filter(experiment=study, status="waiting").update(
        status_changed_at=timezone.now() - timedelta(minutes=2)
    )
    waiting = list(StudyParticipant.objects.filter(experiment=study, status="waiting"))
    together([lambda p=p: crowd.progress(p).status for p in waiting])
    assert assignments.count() == 2 * (k - 1)
    assert set(StudyParticipant.objects.filter(pk__in=[p.pk for p in waiting]).values_list("status", flat=True)) == {
        "timed_out"
    }


def test_nobody_is_released_at_the_wait_limit_while_a_debate_wants_their_judgment(make_user):
    study = make_study(make_user, questions=1, per_debate=2)
    live_judge, late = qualified(study, 2)
    assert crowd.progress(live_judge).status == "judging"
    assert crowd.progress(late).status == "waiting"
    finish_with_verdict(Debate.objects.get(experiment_version__experiment=study))
    StudyParticipant.objects.filter(pk=late.pk).update(status_changed_at=timezone.now() - timedelta(minutes=2))
    late.refresh_from_db()
    assert crowd.progress(late).status == "judging"  # the further judgment, not the timed_out code
    assert Assignment.objects.filter(judge=late.user).count() == 1
