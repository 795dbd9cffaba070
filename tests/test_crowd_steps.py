"""A crowd study's steps from the experiment file's `study:` section (issue 11): the practice debate
(scored and explained), the post-debate survey (stored and exported), the wait limit that releases
a waiting participant with a code, the minimum time per verdict, hidden-page time recorded with the
verdict, the researcher's release and the participants export with its quality columns."""

import csv
import io
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from debates import experiment_spec, services
from debates.experiments import load_experiment, start_experiment
from debates.models import Debate, Question
from judging import crowd
from judging.models import StudyParticipant, Verdict
from tests.factories import dataset_questions, started_study
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db

DEFINITION = """name: Stepwise study
dataset:
  source: steps-unit
protocols:
  - name: debate
    format: debate
    rounds: [sequential]
    scoring_rule: quadratic
debaters:
  kind: human
  pool: [sdeb1, sdeb2]
judges:
  kind: human
study:
  platform: prolific
  quiz:
    - question: Who sees the story?
      options: [the judge, the debaters]
      answer: 1
  practice:
    question: Why did the captain open the airlock?
    answers: [to vent a fire, to escape]
    correct: 0
    transcript:
      - "A: The log says 'vent the fire'."
      - "B: He wanted off the ship."
    explanation: Only A quoted the story; B offered a reading with no line to back it.
  survey:
    - id: evidence
      question: How well did the debaters use evidence?
      kind: scale
    - id: interface
      question: What would you change in the interface?
  wait_limit_seconds: 60
  min_verdict_seconds: 30
  completion_codes:
    completed: DONE1
    timed_out: WAITED1
    failed_checks: FAILED1
"""


def study_with_debaters(make_user, owner_name: str, definition: str):
    """A started study of one question, its debater pool sdeb1 and sdeb2, owned by `owner_name`."""
    owner = make_user(owner_name, "researcher")
    make_user("sdeb1", "debater")
    make_user("sdeb2", "debater")
    dataset_questions("steps-unit", 1, text="Only question?")
    return started_study(owner, definition)


@pytest.fixture
def study(make_user):
    return study_with_debaters(make_user, "sara", DEFINITION)


def enter(client, study, pid):
    client.get(
        reverse("study", args=[study.pk]), {"PROLIFIC_PID": pid, "STUDY_ID": "S", "SESSION_ID": "X"}, follow=True
    )
    return StudyParticipant.objects.get(external_id=pid)


def test_old_files_load_unchanged_and_bad_study_sections_are_refused_by_line():
    assert "study" not in experiment_spec.parse(DEFINITION.split("study:")[0])
    broken = DEFINITION.replace("kind: scale", "kind: stars").replace("correct: 0", "correct: 5")
    with pytest.raises(experiment_spec.SpecError) as error:
        experiment_spec.parse(broken)
    assert any(e.startswith("line 23: study.practice.correct: must be between 0 and 1") for e in error.value.errors)
    assert any("line 31: study.survey[0].kind: must be one of text, scale, choice" in e for e in error.value.errors)


def test_the_practice_debate_is_scored_explained_and_qualifies(client, study):
    participant = enter(client, study, "PRACTICE1")
    client.post(reverse("study_quiz", args=[study.pk]), {"q0": "1"})
    page = client.get(reverse("study", args=[study.pk])).content.decode()
    assert "Practice debate" in page and "vent the fire" in page and "Only A quoted" not in page
    refused = client.post(reverse("study_practice", args=[study.pk]), {"p0": "50", "p1": "50"}, follow=True)
    assert StudyParticipant.objects.get(pk=participant.pk).status == "consented"
    assert "Practice debate" in refused.content.decode()
    page = client.post(reverse("study_practice", args=[study.pk]), {"p0": "30", "p1": "70"}, follow=True)
    participant.refresh_from_db()
    practice = participant.responses["practice"]
    assert practice["correct"] is False and practice["scoring_rule"] == "quadratic"
    assert practice["score"] == pytest.approx(2 * 0.3 - (0.3**2 + 0.7**2))
    shown = page.content.decode()
    assert participant.status == "judging"  # qualified, then seated in the one open debate
    assert client.get(reverse("study", args=[study.pk])).status_code == 200
    assert client.post(reverse("study_practice", args=[study.pk]), {"p0": "90", "p1": "10"}).status_code == 302
    participant.refresh_from_db()
    assert participant.responses["practice"]["correct"] is False  # answered once: no second try
    assert "Your debate is ready" in shown


def test_a_participant_who_waits_past_the_limit_is_released_with_a_code(client, study):
    first = enter(client, study, "TAKESIT")
    crowd.answer_quiz(first, [1])
    assert crowd.progress(crowd.answer_practice(first, [0.8, 0.2])).status == "judging"
    client.logout()
    waiter = enter(client, study, "WAITER")
    crowd.answer_quiz(waiter, [1])
    crowd.answer_practice(waiter, [0.8, 0.2])
    page = client.get(reverse("study", args=[study.pk])).content.decode()
    waiter.refresh_from_db()
    assert waiter.status == "waiting" and "Waiting for a debate to judge" in page
    assert "1 person is waiting" in page and "0 debates waiting for a judge" in page
    status = client.get(reverse("study_status", args=[study.pk])).json()
    assert status["status"] == "waiting" and status["room_text"].startswith("1 person is waiting")
    started = waiter.status_changed_at
    client.get(reverse("study", args=[study.pk]))
    waiter.refresh_from_db()
    assert waiter.status_changed_at == started  # polling does not restart the wait
    StudyParticipant.objects.filter(pk=waiter.pk).update(status_changed_at=timezone.now() - timedelta(seconds=61))
    page = client.get(reverse("study", args=[study.pk])).content.decode()
    waiter.refresh_from_db()
    assert (waiter.status, waiter.outcome, waiter.completion_code) == ("timed_out", "timed_out", "WAITED1")
    assert "complete?cc=WAITED1" in page


def judge_to_the_verdict(client, study, pid):
    participant = enter(client, study, pid)
    crowd.answer_quiz(participant, [1])
    participant = crowd.progress(crowd.answer_practice(participant, [0.8, 0.2]))
    debate = Debate.objects.get(participants__user=participant.user, participants__seat="judge")
    for seat in debate.get_protocol().order:
        services.submit_action(debate.pk, debate.participants.get(seat=seat).user, kind="speech", text="Speech.")
    return participant, debate


def verdict_form(debate, **extra):
    correct_shown = debate.shown_answer_order().index(debate.question.correct_index)
    return dict({f"p{i}": "90" if i == correct_shown else "10" for i in range(2)}, reason="Quoted.", **extra)


def test_a_verdict_sooner_than_the_minimum_is_refused_and_hidden_time_is_kept(client, study):
    participant, debate = judge_to_the_verdict(client, study, "FAST")
    url = reverse("verdict_form", args=[debate.pk])
    too_fast = client.post(url, verdict_form(debate, hidden_seconds="12.5"))
    assert too_fast.status_code == 400 and b"at least 30 seconds" in too_fast.content
    assert not Verdict.objects.exists()
    Debate.objects.filter(pk=debate.pk).update(started_at=timezone.now() - timedelta(seconds=31))
    done = client.post(url, verdict_form(debate, hidden_seconds="12.5"))
    assert done.status_code == 302 and Verdict.objects.get().hidden_seconds == 12.5
    assert 'name="hidden_seconds"' not in client.get(url).content.decode()  # recorded once


def test_the_survey_comes_after_the_last_verdict_and_is_stored_and_exported(client, study):
    participant, debate = judge_to_the_verdict(client, study, "SURVEYED")
    Debate.objects.filter(pk=debate.pk).update(started_at=timezone.now() - timedelta(seconds=60))
    page = client.post(
        reverse("verdict_form", args=[debate.pk]), verdict_form(debate, hidden_seconds="3"), follow=True
    ).content.decode()
    assert "A few questions about the debates" in page and "data-correct-answer>yes<" in page
    participant.refresh_from_db()
    assert participant.status == "judging"
    bad = client.post(
        reverse("study_survey", args=[study.pk]), {"evidence": "7", "interface": "Bigger font."}, follow=True
    )
    assert "takes a number from 1 to 5" in bad.content.decode()
    client.post(reverse("study_survey", args=[study.pk]), {"evidence": "4", "interface": "Bigger font."})
    participant.refresh_from_db()
    assert participant.status == "completed" and participant.completion_code == "DONE1"
    assert participant.responses["survey"] == {"evidence": 4, "interface": "Bigger font."}

    client.force_login(study.owner)
    rows = list(csv.DictReader(io.StringIO(client.get(reverse("study_export", args=[study.pk])).content.decode())))
    assert len(rows) == 1 and rows[0]["participant"] == "SURVEYED" and rows[0]["status"] == "completed"
    assert rows[0]["survey_json"] == '{"evidence": 4, "interface": "Bigger font."}'
    assert (rows[0]["verdicts"], rows[0]["correct"], rows[0]["hidden_seconds"], rows[0]["practice_correct"]) == (
        "1",
        "1",
        "3.0",
        "True",
    )
    page = client.get(reverse("experiment_detail", args=[study.pk])).content.decode()
    assert "1/1 correct, quiz tries 1, practice right, hidden 3 s" in page


def test_the_researcher_releases_a_participant_with_the_outcomes_code(client, study):
    participant = enter(client, study, "RELEASED")
    client.force_login(study.owner)
    url = reverse("study_release", args=[study.pk, participant.pk])
    client.post(url, {"outcome": "failed_checks"})
    participant.refresh_from_db()
    assert (participant.status, participant.outcome, participant.completion_code) == (
        "screened_out",
        "failed_checks",
        "FAILED1",
    )
    again = client.post(url, {"outcome": "timed_out"}, follow=True)
    assert "already finished" in again.content.decode()
    participant.refresh_from_db()
    assert participant.status == "screened_out"


CHECKED = DEFINITION.replace(
    "  wait_limit_seconds: 60\n",
    """  wait_limit_seconds: 600
  judge_timeout_seconds: 120
  exclusion:
    practice_must_be_right: true
    max_hidden_seconds: 60
""",
)


@pytest.fixture
def checked_study(make_user):
    return study_with_debaters(make_user, "cara", CHECKED)


def qualified(study, pid, right=True):
    participant = crowd.enter(study, crowd.Entry("prolific", pid))
    crowd.give_consent(participant, True)
    crowd.answer_quiz(participant, [1])
    return crowd.answer_practice(participant, [0.8, 0.2] if right else [0.2, 0.8])


def test_a_wrong_practice_screens_out_and_the_researcher_bans_across_studies(checked_study, make_user):
    wrong = qualified(checked_study, "SLOPPY", right=False)
    assert (wrong.status, wrong.outcome, wrong.completion_code) == ("screened_out", "failed_checks", "FAILED1")
    # The same person arriving at another study of this researcher is screened out at once.
    Question.objects.create(text="Another?", answers=["a", "b"], correct_index=0, source="other-unit")
    version, _ = load_experiment(
        CHECKED.replace("Stepwise study", "Second study").replace("steps-unit", "other-unit"), checked_study.owner
    )
    start_experiment(version.pk)
    again = crowd.enter(version.experiment, crowd.Entry("prolific", "SLOPPY"))
    assert (again.status, again.outcome) == ("screened_out", "screened_out")
    fresh = crowd.enter(version.experiment, crowd.Entry("prolific", "CAREFUL"))
    assert fresh.status == "allocated"


def test_a_verdict_with_too_much_hidden_time_screens_out(checked_study):
    participant = crowd.progress(qualified(checked_study, "HIDER"))
    debate = Debate.objects.get(participants__user=participant.user, participants__seat="judge")
    for seat in debate.get_protocol().order:
        services.submit_action(debate.pk, debate.participants.get(seat=seat).user, kind="speech", text="Speech.")
    from judging.services import submit_verdict

    verdict, _ = submit_verdict(debate.pk, participant.user, [0.8, 0.2], "sure")
    Verdict.objects.filter(pk=verdict.pk).update(hidden_seconds=61)
    participant = crowd.progress(participant)
    assert (participant.status, participant.outcome) == ("screened_out", "failed_checks")


class SaidPresence:
    """What debates.presence's store says of one debate: {"online": seats, "left": the judge's last departure}."""

    def __init__(self, debate_id, said):
        self.debate_id, self.said = debate_id, said

    def online(self, debate_id):
        if self.said.get("unreachable"):
            raise ConnectionError("Redis is down")
        return self.said["online"] if debate_id == self.debate_id else []

    def last_departure(self, debate_id, seat):
        return self.said["left"] if debate_id == self.debate_id else None


def test_a_judge_who_drops_out_is_replaced_from_the_waiting_room(checked_study, monkeypatch):
    gone = crowd.progress(qualified(checked_study, "GONE"))
    debate = Debate.objects.get(participants__user=gone.user, participants__seat="judge")
    assert debate.status == "live"
    waiting = crowd.progress(qualified(checked_study, "NEXT"))
    assert waiting.status == "waiting"
    # No notice comes when a judge's timeout passes: the waiting page asks then (not at the wait limit).
    assert crowd.seconds_to_next_check(waiting) in (119, 120)
    StudyParticipant.objects.filter(pk=gone.pk).update(status_changed_at=timezone.now() - timedelta(seconds=121))
    # Connected judges keep their seat however long they take. Presence is the live layer's
    # (debates/presence.py, tested there); here its answers are set directly.
    said = {"online": ["judge"], "left": None}
    monkeypatch.setattr(crowd.presence, "store", lambda: SaidPresence(debate.pk, said))
    assert crowd.progress(waiting).status == "waiting"
    assert crowd.seconds_to_next_check(waiting) == 120  # the judge may still leave: ask again later
    # From the room to the verdict page: gone a moment ago, not for good. The timeout counts from then.
    said.update(online=[], left=time.time() - 5)
    assert crowd.progress(waiting).status == "waiting"
    assert crowd.seconds_to_next_check(waiting) in (115, 116)
    said["left"] = time.time() - 121
    waiting = crowd.progress(waiting)
    gone.refresh_from_db()
    assert (gone.status, gone.completion_code) == ("timed_out", "WAITED1")
    assert waiting.status == "judging" and debate.participants.get(seat="judge").user == waiting.user


def test_a_judge_seated_in_their_next_debate_is_timed_from_that_seat(make_user):
    owner = make_user("tara", "researcher")
    make_user("sdeb1", "debater")
    make_user("sdeb2", "debater")
    dataset_questions("steps-unit", 2)
    study = started_study(owner, CHECKED.replace("  wait_limit_seconds: 600\n", "  debates_per_judge: 2\n"))
    judge = crowd.progress(qualified(study, "TWICE"))
    first = Debate.objects.get(participants__user=judge.user, participants__seat="judge")
    for seat in first.get_protocol().order:
        services.submit_action(first.pk, first.participants.get(seat=seat).user, kind="speech", text="Speech.")
    from judging.services import submit_verdict

    submit_verdict(first.pk, judge.user, [0.8, 0.2], "sure")
    StudyParticipant.objects.filter(pk=judge.pk).update(status_changed_at=timezone.now() - timedelta(seconds=500))
    judge = crowd.progress(judge)
    assert judge.status == "judging" and Debate.objects.filter(participants__user=judge.user).count() == 2
    # Seated again just now: not yet a dropout, however long the first debate took.
    assert (timezone.now() - judge.status_changed_at).total_seconds() < 5
    assert crowd.free_dropped_seats(crowd.study_version(study), crowd.study_settings(crowd.study_version(study))) == 0


def test_the_monitor_counts_people_waits_dropouts_and_judged_debates_and_advances_people(client, study):
    first = crowd.progress(crowd.answer_practice(crowd.answer_quiz(enter(client, study, "MON1"), [1])[0], [0.8, 0.2]))
    client.logout()
    second = crowd.answer_practice(crowd.answer_quiz(enter(client, study, "MON2"), [1])[0], [0.8, 0.2])
    assert (first.status, second.status) == ("judging", "qualified")
    client.force_login(study.owner)
    monitor = client.get(reverse("study_monitor", args=[study.pk])).json()
    assert monitor["by_status"]["judging"] == 1 and monitor["by_status"]["qualified"] == 1
    assert monitor["waiting_room"]["waiting"] == 1 and monitor["waiting_room"]["open_debates"] == 0
    assert (monitor["debates"], monitor["debates_with_judge"], monitor["debates_judged"], monitor["dropouts"]) == (
        1,
        1,
        0,
        0,
    )
    client.post(reverse("study_advance", args=[study.pk, second.pk]))
    second.refresh_from_db()
    assert second.status == "waiting"  # advanced: no debate is free, so into the waiting room now
    page = client.get(reverse("experiment_detail", args=[study.pk])).content.decode()
    assert "0 of 1 debates judged, 1 with a judge; 0 timed out or dropped out." in page and "study-monitor.js" in page
    other = client.get(reverse("study_monitor", args=[study.pk]))
    assert other.status_code == 200
    client.force_login(User.objects.create_user("nosy2"))
    assert client.get(reverse("study_monitor", args=[study.pk])).status_code in (302, 403)


def test_past_the_wait_limit_a_participant_can_judge_a_finished_debate_offline_instead(client, make_user):
    owner = make_user("olga", "researcher")
    make_user("sdeb1", "debater")
    make_user("sdeb2", "debater")
    dataset_questions("steps-unit", 1, text="Only question?", hidden_material="The answer is yes.")
    version, _ = load_experiment(
        DEFINITION.replace("  wait_limit_seconds: 60\n", "  wait_limit_seconds: 60\n  on_wait_limit: offline\n"), owner
    )
    start_experiment(version.pk)
    study = version.experiment
    first, debate = judge_to_the_verdict(client, study, "LIVEJUDGE")
    Debate.objects.filter(pk=debate.pk).update(started_at=timezone.now() - timedelta(seconds=60))
    client.post(reverse("verdict_form", args=[debate.pk]), verdict_form(debate))
    client.logout()
    late = enter(client, study, "LATECOMER")
    crowd.answer_quiz(late, [1])
    late = crowd.progress(crowd.answer_practice(late, [0.8, 0.2]))
    assert late.status == "waiting"
    StudyParticipant.objects.filter(pk=late.pk).update(status_changed_at=timezone.now() - timedelta(seconds=61))
    page = client.get(reverse("study", args=[study.pk])).content.decode()
    late.refresh_from_db()
    assert late.status == "judging" and "Judge the transcript" in page
    from judging import offline
    from judging.models import Assignment

    assignment = Assignment.objects.get(judge=late.user)
    assert assignment.debate_id == debate.pk
    while not offline.ready_for_verdict(assignment):
        offline.report_step(assignment.pk, late.user, assignment.position, [0.6, 0.4])
        assignment.refresh_from_db()
    offline.submit_offline_verdict(assignment.pk, late.user, [0.7, 0.3], "From the transcript.")
    assert "Continue the study" in client.get(reverse("offline_judging", args=[assignment.pk])).content.decode()
    page = client.get(reverse("study", args=[study.pk])).content.decode()
    assert "A few questions about the debates" in page  # the offline verdict counts as their judgment


def finished_gold_debate(make_user):
    """A finished debate with a known answer, from outside the study, to serve as gold."""
    from debates.protocol import Protocol

    question = Question.objects.create(
        text="Gold: is water wet?",
        answers=["yes", "no"],
        correct_index=0,
        hidden_material="Water is wet.",
        source="gold-unit",
    )
    a, b, judge = make_user("gold_a", "debater"), make_user("gold_b", "debater"), make_user("gold_j", "judge")
    debate = services.create_debate(
        question, Protocol(rounds=("sequential",)), {"A": (a, 0), "B": (b, 1)}, judge=judge, answer_order=[0, 1]
    )
    services.start_debate(debate.pk)
    for seat in debate.get_protocol().order:
        services.submit_action(debate.pk, debate.participants.get(seat=seat).user, kind="speech", text="Speech.")
    from judging.services import submit_verdict

    submit_verdict(debate.pk, judge, [0.9, 0.1], "Obvious.")
    return debate


def test_gold_debates_are_mixed_in_checked_and_not_counted_as_work(client, make_user):
    gold = finished_gold_debate(make_user)
    owner = make_user("gina", "researcher")
    make_user("sdeb1", "debater")
    make_user("sdeb2", "debater")
    dataset_questions("steps-unit", 2, text=lambda i: f"Real {i}?")
    text = DEFINITION.replace(
        "  wait_limit_seconds: 60\n",
        f"""  wait_limit_seconds: 60
  gold:
    debates: [{gold.pk}]
    rate: 1
  exclusion:
    min_gold_accuracy: 1
""",
    )
    client.force_login(owner)
    assert (
        "no finished debates with ids 999999"
        in client.post(
            reverse("experiment_new"), {"definition": text.replace(f"[{gold.pk}]", "[999999]")}
        ).content.decode()
    )
    version, _ = load_experiment(text, owner)
    start_experiment(version.pk)
    study = version.experiment
    from judging import offline
    from judging.models import Assignment

    outcomes = {}
    for pid, right in (("GOLDEN", True), ("LEADEN", False)):
        client.logout()
        participant, debate = judge_to_the_verdict(client, study, pid)
        Debate.objects.filter(pk=debate.pk).update(started_at=timezone.now() - timedelta(seconds=60))
        page = client.post(reverse("verdict_form", args=[debate.pk]), verdict_form(debate), follow=True)
        participant.refresh_from_db()
        assignment = Assignment.objects.get(judge=participant.user)
        assert participant.status == "judging" and assignment.debate_id == gold.pk  # gold before the survey
        assert "Judge the transcript" in page.content.decode()
        offline.submit_offline_verdict(assignment.pk, participant.user, [0.8, 0.2] if right else [0.2, 0.8], "Gold.")
        page = client.get(reverse("study", args=[study.pk])).content.decode()
        participant.refresh_from_db()
        outcomes[pid] = (participant.status, participant.outcome, "A few questions" in page)
    assert outcomes == {"GOLDEN": ("judging", "", True), "LEADEN": ("screened_out", "failed_checks", False)}
    client.force_login(owner)
    page = client.get(reverse("experiment_detail", args=[study.pk])).content.decode()
    assert "gold 1/1" in page and "gold 0/1" in page


def test_further_judgments_go_to_the_waiting_room_exactly_k_per_debate(client, make_user):
    owner = make_user("kara", "researcher")
    make_user("sdeb1", "debater")
    make_user("sdeb2", "debater")
    make_user("bystander", "judge")  # a judge outside the study never gets the study's judgments
    dataset_questions("steps-unit", 1, text="Only question?")
    text = DEFINITION.replace(
        "judges:\n  kind: human\n", "judges:\n  kind: human\n  per_debate: 3\n  offline: all_at_once\n"
    )
    version, _ = load_experiment(text, owner)
    start_experiment(version.pk)
    study = version.experiment
    live_judge, debate = judge_to_the_verdict(client, study, "LIVE")
    Debate.objects.filter(pk=debate.pk).update(started_at=timezone.now() - timedelta(seconds=60))
    client.post(reverse("verdict_form", args=[debate.pk]), verdict_form(debate))
    from judging.models import Assignment

    assert not Assignment.objects.exists()  # nothing handed to judges outside the study
    later = []
    for pid in ("SECOND", "THIRD", "FOURTH"):
        participant = crowd.enter(study, crowd.Entry("prolific", pid))
        crowd.give_consent(participant, True)
        crowd.answer_quiz(participant, [1])
        later.append(crowd.progress(crowd.answer_practice(participant, [0.8, 0.2])))
    assert [p.status for p in later] == ["judging", "judging", "waiting"]  # K = 3: the live judge and two more
    assigned = Assignment.objects.filter(debate=debate)
    assert assigned.count() == 2 and {a.judge_id for a in assigned} == {later[0].user_id, later[1].user_id}
    assert assigned.filter(mode="all_at_once").count() == 2


def test_nobody_is_timed_out_while_the_presence_store_cannot_say_who_is_there(checked_study, monkeypatch):
    judge = crowd.progress(qualified(checked_study, "AWAY"))
    debate = Debate.objects.get(participants__user=judge.user, participants__seat="judge")
    waiting = crowd.progress(qualified(checked_study, "NEXT2"))
    StudyParticipant.objects.filter(pk=judge.pk).update(status_changed_at=timezone.now() - timedelta(seconds=500))
    monkeypatch.setattr(crowd.presence, "store", lambda: SaidPresence(debate.pk, {"unreachable": True}))
    assert crowd.progress(waiting).status == "waiting"
    judge.refresh_from_db()
    assert judge.status == "judging" and debate.participants.get(seat="judge").user == judge.user
