"""A 100-judge crowd study run end to end by bots (`manage.py run_bots`) against a real daphne
server: each bot arrives by a Prolific link, consents, passes the quiz and the practice, waits, is
seated as the judge of a debate (all at once, so the seat constraint settles real races), gives its
feedback over the debate's websocket and its verdict on the verdict page, answers the survey and
leaves with the completion code; then the bonus file is written. Ten of them drop out once seated
(they open the room, close it and never come back): after the study's judge timeout their seats go
to the ten extra bots in the waiting room, so every debate still gets exactly one judgment.
Direct-judging debates keep the run free of AI work, so it measures the study machinery itself."""

import csv
import io
from pathlib import Path

import pytest
from django.core.management import call_command

from debates.experiments import load_experiment, start_experiment
from debates.models import Debate, Participant
from judging.models import StudyParticipant, Verdict
from tests.factories import dataset_questions

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DEBATES = 100
DROPOUTS = 10
BOTS = DEBATES + DROPOUTS
DEFINITION = (Path(__file__).parent / "data" / "bot-study.yaml").read_text()


@pytest.mark.timeout(600)  # about a minute here; room for a busier machine
def test_a_hundred_bots_run_a_study_from_link_to_bonus_file_and_dropouts_are_replaced(
    daphne_server, make_user, tmp_path, capsys
):
    owner = make_user("botmaster", "researcher")
    dataset_questions(
        "bot-study", DEBATES, correct_index=lambda i: i % 2, hidden_material="", public_material="Read carefully."
    )
    version, _ = load_experiment(DEFINITION, owner)
    start_experiment(version.pk)
    bonus_path = tmp_path / "bonus.csv"

    call_command(
        "run_bots",
        str(version.experiment_id),
        "--judges",
        str(BOTS),
        "--dropouts",
        str(DROPOUTS),
        "--url",
        daphne_server,
        "--concurrency",
        "25",
        "--accuracy",
        "0.7",
        "--bonus-file",
        str(bonus_path),
        "--timeout",
        "500",
    )
    printed = capsys.readouterr().out
    print(printed)  # the run's figures, for the log

    participants = list(StudyParticipant.objects.filter(experiment=version.experiment))
    assert len(participants) == BOTS
    stayed = [p for p in participants if p.status == "completed"]
    dropped = [p for p in participants if p.status != "completed"]
    assert len(stayed) == DEBATES and len(dropped) == DROPOUTS
    assert all(p.completion_code == "BOTDONE" and p.responses["survey"]["comments"] == "No comments." for p in stayed)
    # A dropout ends timed out with that outcome's code, no verdict, no bonus and no seat.
    assert {(p.status, p.outcome, p.completion_code, p.bonus) for p in dropped} == {
        ("timed_out", "timed_out", "BOTGONE", None)
    }
    assert not Verdict.objects.filter(judge__in=[p.user for p in dropped]).exists()
    assert not Participant.objects.filter(user__in=[p.user for p in dropped]).exists()
    for line in (
        f"completed: {DEBATES}",
        f"with_code: {DEBATES}",
        "errors: 0",
        f"dropped_out: {DROPOUTS}",
        f"seats_freed: {DROPOUTS}",
        f"seats_refilled: {DROPOUTS}",
        f"end_statuses: {{'completed': {DEBATES}, 'timed_out': {DROPOUTS}}}",
    ):
        assert line in printed
    assert "median_seconds_to_refill: None" not in printed
    # Exactly one judge per debate, every debate judged once, nobody twice.
    judges = Participant.objects.filter(debate__experiment_version=version, seat="judge")
    assert judges.count() == DEBATES and judges.values("user").distinct().count() == DEBATES
    assert Verdict.objects.filter(debate__experiment_version=version).count() == DEBATES
    assert Verdict.objects.filter(debate__experiment_version=version).values("debate").distinct().count() == DEBATES
    assert set(Debate.objects.filter(experiment_version=version).values_list("status", flat=True)) == {"complete"}
    # The bonus file: one line per person owed, in Prolific's format, no header, matching the scoring rule.
    rows = list(csv.reader(io.StringIO(bonus_path.read_text())))
    correct = {p.external_id: Verdict.objects.get(judge=p.user).correct for p in stayed}
    assert sorted(rows) == sorted([pid, "0.50"] for pid, right in correct.items() if right)
    assert 0 < len(rows) < DEBATES
