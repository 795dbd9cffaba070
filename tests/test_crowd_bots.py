"""A 100-judge crowd study run end to end by bots (`manage.py run_bots`) against a real daphne
server: each bot arrives by a Prolific link, consents, passes the quiz and the practice, waits, is
seated as the judge of a debate (all at once, so the seat constraint settles real races), gives its
feedback over the debate's websocket and its verdict on the verdict page, answers the survey and
leaves with the completion code; then the bonus file is written. Direct-judging debates keep the
run free of AI work, so it measures the study machinery itself."""

import csv
import io

import pytest
from django.core.management import call_command

from debates.experiments import load_experiment, start_experiment
from debates.models import Debate, Participant
from judging.models import StudyParticipant, Verdict
from tests.factories import dataset_questions

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

JUDGES = 100
DEFINITION = """name: Bot study
dataset:
  source: bot-study
protocols:
  - name: direct
    format: direct
judges:
  kind: human
study:
  platform: prolific
  consent: You agree to take part.
  quiz:
    - question: Who sees the story?
      options: [the judge, the debaters]
      answer: 1
  practice:
    question: Which is right?
    answers: [this one, that one]
    correct: 0
    transcript: ["A: this one, see line 3."]
    explanation: A quoted line 3.
  survey:
    - id: clarity
      question: How clear were the debates?
      kind: scale
    - id: comments
      question: Anything else?
  completion_codes:
    completed: BOTDONE
  bonus:
    per_correct: 0.5
"""


@pytest.mark.timeout(600)  # about a minute here; room for a busier machine
def test_a_hundred_bots_run_a_study_from_link_to_bonus_file(daphne_server, make_user, tmp_path, capsys):
    owner = make_user("botmaster", "researcher")
    dataset_questions("bot-study", JUDGES, correct_index=lambda i: i % 2, hidden_material="",
                      public_material="Read carefully.")
    version, _ = load_experiment(DEFINITION, owner)
    start_experiment(version.pk)
    bonus_path = tmp_path / "bonus.csv"

    call_command(
        "run_bots",
        str(version.experiment_id),
        "--judges",
        str(JUDGES),
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
    assert len(participants) == JUDGES and {p.status for p in participants} == {"completed"}
    assert all(
        p.completion_code == "BOTDONE" and p.responses["survey"]["comments"] == "No comments." for p in participants
    )
    assert f"completed: {JUDGES}" in printed and f"with_code: {JUDGES}" in printed and "errors: 0" in printed
    # Exactly one judge per debate, every debate judged once, nobody twice.
    judges = Participant.objects.filter(debate__experiment_version=version, seat="judge")
    assert judges.count() == JUDGES and judges.values("user").distinct().count() == JUDGES
    assert Verdict.objects.filter(debate__experiment_version=version).count() == JUDGES
    assert set(Debate.objects.filter(experiment_version=version).values_list("status", flat=True)) == {"complete"}
    # The bonus file: one line per person owed, in Prolific's format, no header, matching the scoring rule.
    rows = list(csv.reader(io.StringIO(bonus_path.read_text())))
    correct = {p.external_id: Verdict.objects.get(judge=p.user).correct for p in participants}
    assert sorted(rows) == sorted([pid, "0.50"] for pid, right in correct.items() if right)
    assert 0 < len(rows) < JUDGES
