"""Offline judging (judging.offline): further judges judge a finished debate from its transcript,
step by step or all at once, then give a verdict with live=False. Real PostgreSQL; the pages through
Django's test client."""

import json

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from debates import services
from debates.experiments import load_experiment, start_experiment
from debates.models import Debate, Participant, Question
from debates.protocol import JUDGE, Protocol, Refused
from judging import offline
from judging.models import Assignment, StepReport, Verdict
from judging.services import submit_verdict

pytestmark = pytest.mark.django_db

PASSAGE = "The keeper lit the lamp at dusk. SECRET-7Q: the ship was saved by the light."
PRIVATE_NOTE = "private-note-9x: lean on the lamp"
DEFINITION = """
name: Offline study
dataset:
  source: offline-unit
protocols:
  - name: debate
    format: debate
    rounds: [simultaneous, judge_feedback, sequential]
debaters:
  kind: human
  pool: [deb1, deb2]
judges:
  kind: human
  per_debate: 3
  offline: {offline}
  pool: [live1, off1, off2, off3]
counterbalance:
  seed: 5
blinding:
  aliases: true
  reveal_after_verdict: {reveal}
"""


@pytest.fixture
def study(make_user):
    """One question; an experiment with a live judge and two offline judgments wanted per debate."""

    def make(offline_mode="stepwise", reveal="false"):
        owner = make_user("rhea", "researcher")
        for name in ("deb1", "deb2"):
            make_user(name, "debater")
        for name in ("live1", "off1", "off2", "off3"):
            make_user(name, "judge")
        Question.objects.create(
            text="Was the ship saved?",
            answers=["Yes, by the lamp", "No, it sank"],
            correct_index=0,
            hidden_material=PASSAGE,
            public_material="A lighthouse story.",
            source="offline-unit",
            external_id="q1",
        )
        version, _ = load_experiment(DEFINITION.format(offline=offline_mode, reveal=reveal), owner)
        [debate] = start_experiment(version.pk)
        return Debate.objects.get(pk=debate.pk)

    return make


def seated(debate):
    return {p.seat: p.user for p in debate.participants.select_related("user")}


def play_to_the_end(debate):
    """Every expected seat acts until the debate is over: a quote and a private note in the first
    speech, a question from the judge in the feedback round."""
    people = seated(debate)
    speeches = iter(
        [
            "I quote <quote>The keeper lit the lamp at dusk.</quote>",
            "The sea was too rough.",
            "The lamp answers your question.",
            "Nobody saw a light.",
        ]
    )
    while True:
        engine = Debate.objects.get(pk=debate.pk).engine()
        if engine.finished:
            return Debate.objects.get(pk=debate.pk)
        seat = engine.expected_seats()[0]
        if seat == JUDGE:
            services.submit_action(
                debate.pk, people[JUDGE], kind="feedback", probabilities=[0.6, 0.4], text="Who saw the lamp?"
            )
        else:
            services.submit_action(
                debate.pk, people[seat], kind="speech", text=next(speeches), private_note=PRIVATE_NOTE
            )


@pytest.fixture
def finished(study, django_capture_on_commit_callbacks):
    def make(offline_mode="stepwise", reveal="false"):
        debate = study(offline_mode, reveal)
        with django_capture_on_commit_callbacks(execute=True):
            return play_to_the_end(debate)

    return make


def shown(debate, canonical):
    return [canonical[i] for i in debate.shown_answer_order()]


def stored():
    return Assignment.objects.count(), StepReport.objects.count(), Verdict.objects.count()


# Assignments ----------------------------------------------------------------------------------------


def test_a_finished_experiment_debate_gets_the_offline_judgments_still_wanted(finished):
    debate = finished()
    assignments = list(Assignment.objects.filter(debate=debate).select_related("judge"))
    assert debate.status == Debate.AWAITING_VERDICT
    assert [a.judge.username for a in assignments] == ["off1", "off2"]  # per_debate 3 = live judge + 2
    assert {a.mode for a in assignments} == {Assignment.STEPWISE}
    assert offline.assign_offline_judges(debate.pk) == []  # idempotent


def test_an_unfinished_debate_gets_no_assignments_and_cannot_be_assigned(study, make_user):
    debate = study()
    assert debate.status == Debate.LIVE
    assert offline.assign_offline_judges(debate.pk) == []
    with pytest.raises(Refused) as refused:
        offline.assign(debate.pk, User.objects.get(username="off3"))
    assert refused.value.code == "debate_not_over"
    assert not Assignment.objects.exists()


def test_experiments_without_offline_judging_get_no_assignments(finished):
    debate = finished(offline_mode="none")
    assert not Assignment.objects.filter(debate=debate).exists()


@pytest.mark.parametrize(
    "who, code", [("deb1", "debated_question"), ("live1", "judged_question"), ("off1", "judged_question")]
)
def test_nobody_judges_a_question_they_debated_or_already_judge(finished, who, code):
    debate = finished()
    user = Participant.objects.filter(user__username=who).first()
    user = user.user if user else Assignment.objects.get(judge__username=who).judge
    before = stored()
    with pytest.raises(Refused) as refused:
        offline.assign(debate.pk, user, Assignment.ALL_AT_ONCE)
    assert refused.value.code == code
    assert stored() == before


def test_a_judge_judges_each_question_once_across_debates(finished, make_user):
    """A second debate on the same question: off1 already judges the question offline."""
    debate = finished()
    other = services.create_debate(
        debate.question,
        Protocol(rounds=("sequential",)),
        {"A": (make_user("x1"), 0), "B": (make_user("x2"), 1)},
        judge=make_user("x3"),
    )
    Debate.objects.filter(pk=other.pk).update(status=Debate.AWAITING_VERDICT)
    off1 = Assignment.objects.get(judge__username="off1").judge
    with pytest.raises(Refused) as refused:
        offline.assign(other.pk, off1)
    assert refused.value.code == "judged_question"
    assert offline.assign(other.pk, User.objects.get(username="off3")).debate_id == other.pk


def test_an_observer_of_the_question_may_not_judge_it(finished, make_user):
    debate = finished()
    watcher = make_user("watcher", "judge")
    Participant.objects.create(debate=debate, seat=Participant.OBSERVER, user=watcher)
    with pytest.raises(Refused) as refused:
        offline.assign(debate.pk, watcher)
    assert refused.value.code == "saw_hidden_material"


def test_an_unknown_mode_is_refused(finished, make_user):
    debate = finished()
    with pytest.raises(Refused) as refused:
        offline.assign(debate.pk, make_user("newcomer", "judge"), "sometimes")
    assert refused.value.code == "bad_mode"


# Step by step ---------------------------------------------------------------------------------------


def test_step_by_step_reveals_one_debater_turn_at_a_time_and_stores_reports_in_order(finished):
    debate = finished()
    assignment = Assignment.objects.get(judge__username="off1")
    judge = assignment.judge
    steps = offline.step_count(debate)
    assert steps == 4 and assignment.position == 1
    seen = []
    for step in range(1, steps + 1):
        assignment.refresh_from_db()
        turns = offline.transcript_state(assignment)["turns"]
        seen.append(sum(t["seat"] != JUDGE for t in turns))
        assert not offline.ready_for_verdict(assignment)
        offline.report_step(assignment.pk, judge, step, shown(debate, [0.5 + step / 10, 0.5 - step / 10]))
    assert seen == [1, 2, 3, 4]
    reports = list(assignment.reports.all())
    assert [r.step for r in reports] == [1, 2, 3, 4]
    assert [p for r in reports for p in r.probabilities] == pytest.approx([0.6, 0.4, 0.7, 0.3, 0.8, 0.2, 0.9, 0.1])
    assert [r.turns_shown for r in reports] == sorted(r.turns_shown for r in reports)
    assignment.refresh_from_db()
    assert offline.ready_for_verdict(assignment) and assignment.status == Assignment.IN_PROGRESS


def test_a_repeated_step_changes_nothing_and_a_skipped_step_is_refused(finished):
    debate = finished()
    assignment = Assignment.objects.get(judge__username="off1")
    first = offline.report_step(assignment.pk, assignment.judge, 1, [0.5, 0.5])
    assert offline.report_step(assignment.pk, assignment.judge, 1, [0.9, 0.1]).pk == first.pk
    before = stored()
    for step, code in ((3, "wrong_step"), (0, "wrong_step")):
        with pytest.raises(Refused) as refused:
            offline.report_step(assignment.pk, assignment.judge, step, [0.5, 0.5])
        assert refused.value.code == code
    with pytest.raises(Refused) as refused:
        offline.report_step(assignment.pk, assignment.judge, 2, [0.7, 0.7])
    assert refused.value.code == "bad_probabilities"
    with pytest.raises(Refused) as refused:
        offline.submit_offline_verdict(assignment.pk, assignment.judge, shown(debate, [0.8, 0.2]), "too early")
    assert refused.value.code == "steps_left"
    with pytest.raises(Refused) as refused:
        offline.report_step(assignment.pk, Assignment.objects.get(judge__username="off2").judge, 2, [0.5, 0.5])
    assert refused.value.code == "not_your_assignment"
    assert stored() == before


def test_the_final_offline_verdict_is_stored_with_live_false_and_no_turn_penalty(finished):
    debate = finished()
    assignment = Assignment.objects.get(judge__username="off1")
    for step in range(1, offline.step_count(debate) + 1):
        offline.report_step(assignment.pk, assignment.judge, step, [0.5, 0.5])
    verdict = offline.submit_offline_verdict(
        assignment.pk,
        assignment.judge,
        shown(debate, [0.75, 0.25]),
        "The lamp quote is verified.",
        seconds_spent="42",
        client_id="v-1",
    )
    assert (verdict.live, verdict.judge_kind, verdict.correct, verdict.chosen_index) == (False, "human", True, 0)
    assert verdict.probabilities == pytest.approx([0.75, 0.25])
    assert verdict.score == pytest.approx(-0.415037, abs=1e-5)  # log2(0.75), no penalty
    assert verdict.provenance["offline"] == {"mode": "stepwise", "assignment": assignment.pk, "steps": 4}
    assignment.refresh_from_db()
    assert assignment.status == Assignment.DONE and assignment.verdict == verdict
    assert Debate.objects.get(pk=debate.pk).status == Debate.AWAITING_VERDICT  # the live verdict is still to come
    again = offline.submit_offline_verdict(assignment.pk, assignment.judge, [0.1, 0.9], "retry", client_id="v-1")
    assert again.pk == verdict.pk and Verdict.objects.count() == 1
    with pytest.raises(Refused) as refused:
        offline.submit_offline_verdict(assignment.pk, assignment.judge, [0.1, 0.9], "another")
    assert refused.value.code == "already_judged"


def test_all_at_once_shows_the_whole_transcript_and_takes_the_verdict_at_once(finished):
    debate = finished(offline_mode="all_at_once")
    assignment = Assignment.objects.get(judge__username="off1")
    assert assignment.mode == Assignment.ALL_AT_ONCE and offline.ready_for_verdict(assignment)
    turns = offline.transcript_state(assignment)["turns"]
    assert sum(t["seat"] != JUDGE for t in turns) == 4
    with pytest.raises(Refused) as refused:
        offline.report_step(assignment.pk, assignment.judge, 1, [0.5, 0.5])
    assert refused.value.code == "not_stepwise"
    verdict = offline.submit_offline_verdict(assignment.pk, assignment.judge, shown(debate, [0.2, 0.8]), "Sank.")
    assert not verdict.live and not verdict.correct


# What the offline judge sees ----------------------------------------------------------------------


def test_the_offline_judge_never_sees_hidden_material_the_answer_private_notes_or_live_probabilities(finished):
    finished(offline_mode="all_at_once")
    assignment = Assignment.objects.get(judge__username="off1")
    state = offline.transcript_state(assignment)
    text = json.dumps(state)
    assert "The keeper lit the lamp at dusk." in text  # the quote itself is shown...
    assert state["quotes"] and state["quotes"][0]["status"] == "verified"
    assert "start" not in state["quotes"][0]  # ...but not where it sits in the passage
    for secret in (
        "SECRET-7Q",
        PRIVATE_NOTE,
        "correct_answer",
        "honest_seats",
        "hidden",
        "private_note",
        "probabilities",
    ):
        assert secret not in text, secret
    assert "Who saw the lamp?" in text  # the live judge's question stays: the debaters answer it


def test_the_offline_page_walks_a_judge_through_the_steps_to_the_verdict(finished, client):
    debate = finished()
    assignment = Assignment.objects.get(judge__username="off1")
    client.force_login(assignment.judge)
    url = reverse("offline_judging", args=[assignment.pk])
    for step in range(1, 5):
        page = client.get(url).content.decode()
        assert f"Turn {step} of 4" in page
        assert "SECRET-7Q" not in page and PRIVATE_NOTE not in page
        assert '<span class="quote quote-verified"><q>The keeper lit the lamp at dusk.</q>' in page  # the first turn
        response = client.post(url, {"action": "step", "step": step, "p0": 60, "p1": 40})
        assert response.status_code == 302
    page = client.get(url).content.decode()
    assert "Your verdict" in page and "data-verdict-form" in page
    response = client.post(url, {"action": "verdict", "p0": 70, "p1": 30, "reason": "", "client_id": "c"})
    assert response.status_code == 400 and "write a short reason" in response.content.decode().lower()
    response = client.post(url, {"action": "verdict", "p0": 70, "p1": 30, "reason": "The lamp.", "client_id": "c"})
    assert response.status_code == 302
    assert "your verdict is recorded" in client.get(url).content.decode()
    verdict = Verdict.objects.get(judge=assignment.judge)
    assert shown(debate, verdict.probabilities) == pytest.approx([0.7, 0.3]) and not verdict.live


def test_only_the_assigned_judge_opens_an_offline_assignment(finished, client, make_user):
    finished()
    assignment = Assignment.objects.get(judge__username="off1")
    url = reverse("offline_judging", args=[assignment.pk])
    assert client.get(url).status_code == 302  # to the sign-in page
    client.force_login(Assignment.objects.get(judge__username="off2").judge)
    assert client.get(url).status_code == 403
    assert client.post(url, {"action": "step", "step": 1, "p0": 50, "p1": 50}).status_code == 403
    assert not StepReport.objects.exists()


def test_the_lobby_lists_offline_assignments(finished, client):
    finished()
    assignment = Assignment.objects.get(judge__username="off1")
    client.force_login(assignment.judge)
    page = client.get(reverse("lobby")).content.decode()
    assert "To judge offline" in page and "Judge offline" in page
    assert reverse("offline_judging", args=[assignment.pk]) in page


# Blinding -----------------------------------------------------------------------------------------


def test_identities_stay_hidden_from_judges_when_the_experiment_never_reveals_them(finished):
    debate = finished(offline_mode="all_at_once", reveal="false")
    assignment = Assignment.objects.get(judge__username="off1")
    offline.submit_offline_verdict(assignment.pk, assignment.judge, shown(debate, [0.8, 0.2]), "Lamp.")
    assignment.refresh_from_db()
    seats = offline.transcript_state(assignment)["seats"]
    assert [s["name"] for s in seats if s["seat"] != JUDGE] == ["Debater A", "Debater B"]
    assert all("identity" not in s and "ai" not in s for s in seats)


def test_identities_are_revealed_to_each_judge_only_after_their_own_verdict(finished, client):
    debate = finished(offline_mode="all_at_once", reveal="true")
    first, second = Assignment.objects.filter(debate=debate).order_by("id")
    offline.submit_offline_verdict(first.pk, first.judge, shown(debate, [0.8, 0.2]), "Lamp.")
    first.refresh_from_db()
    revealed = {s["seat"]: s for s in offline.transcript_state(first)["seats"]}
    assert {revealed["A"]["identity"], revealed["B"]["identity"]} == {"deb1", "deb2"}
    assert revealed["A"]["ai"] is False
    hidden = offline.transcript_state(second)["seats"]
    assert all("identity" not in s and "ai" not in s for s in hidden)
    # The live judge: hidden in the room until the live verdict, then revealed.
    live_judge = seated(debate)[JUDGE]
    client.force_login(live_judge)
    state = client.get(reverse("api_debate_state", args=[debate.pk])).json()
    assert all("identity" not in s for s in state["seats"])
    submit_verdict(debate.pk, live_judge, shown(debate, [0.9, 0.1]), "Lamp.")
    state = client.get(reverse("api_debate_state", args=[debate.pk])).json()
    assert {s["identity"] for s in state["seats"] if s["seat"] != JUDGE} == {"deb1", "deb2"}
    page = client.get(reverse("offline_judging", args=[first.pk]))
    assert page.status_code == 403  # the live judge has no offline assignment here


def test_the_command_assigns_offline_judges_to_imported_debates(make_user, question):
    from io import StringIO

    from django.core.management import CommandError, call_command

    debaters = [make_user(f"imp{i}") for i in range(4)]
    debates = []
    for i in range(2):
        debate = services.create_debate(
            question, Protocol(rounds=("sequential",)), {"A": (debaters[2 * i], 0), "B": (debaters[2 * i + 1], 1)}
        )
        Debate.objects.filter(pk=debate.pk).update(status=Debate.COMPLETE, source="imported")
        debates.append(debate)
    for name in ("newa", "newb", "newc"):
        make_user(name, "judge")
    out = StringIO()
    call_command("assign_offline_judges", "--source", "imported", "--mode", "all_at_once", stdout=out)
    # Both debates are on the same question, so one judge per debate, never the same one twice.
    pairs = sorted(Assignment.objects.values_list("debate_id", "judge__username"))
    assert pairs == [(debates[0].pk, "newa"), (debates[1].pk, "newb")]
    assert out.getvalue().strip() == "2 new offline assignments; 0 debates still lack eligible judges"
    call_command("assign_offline_judges", "--source", "imported", "--per-debate", "2", stdout=out)
    assert Assignment.objects.count() == 3  # only newc was left for this question
    assert "1 debates still lack eligible judges" in out.getvalue()
    with pytest.raises(CommandError):
        call_command("assign_offline_judges", "--judges", "newa,ghost")
