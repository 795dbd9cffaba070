"""The one write path (debates.services, judging.services) against the real database: models and
constraints, turns, refusals that store nothing, verdicts and their scores, turn time-outs."""

import math
import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from debates import services, snapshots
from debates.models import Debate, DebateEvent, Participant, Question, Turn
from debates.protocol import Protocol, Refused
from judging.models import Verdict
from judging.services import submit_verdict

pytestmark = pytest.mark.django_db


# Helpers ------------------------------------------------------------------------------------------


def people(debate):
    return {p.seat: p.user for p in debate.participants.select_related("user")}


def stored(debate):
    """Everything a refused call must leave as it was."""
    debate = Debate.objects.get(pk=debate.pk)
    return {
        "turns": Turn.objects.count(),
        "events": DebateEvent.objects.count(),
        "verdicts": Verdict.objects.count(),
        "seats": Participant.objects.count(),
        "debates": Debate.objects.count(),
        "status": debate.status,
        "last_seq": debate.last_seq,
        "deadline": debate.turn_deadline,
    }


def assert_refused(debate, code, call, *args, **kwargs):
    """call(*args, **kwargs) is refused with `code` and a message, and nothing is stored."""
    before = stored(debate)
    with pytest.raises(Refused) as refused:
        call(*args, **kwargs)
    assert refused.value.code == code, refused.value.message
    assert refused.value.message.strip()
    assert stored(debate) == before
    return refused.value.message


def speak(debate, who, text, **fields):
    """A speech by the person in seat `who`."""
    return services.submit_action(debate.pk, people(debate)[who], kind="speech", text=text, **fields)


def feedback(debate, probabilities, **fields):
    return services.submit_action(
        debate.pk, people(debate)["judge"], kind="feedback", probabilities=probabilities, **fields
    )


def shown(debate, canonical):
    """Probabilities in the debate's shown order, from ones in the question's canonical order."""
    return [canonical[i] for i in debate.shown_answer_order()]


def finish(debate):
    """Plays the two-round debate to its end: simultaneous, judge feedback, sequential."""
    services.start_debate(debate.pk)
    speak(debate, "A", "The captain vents the fire.")
    speak(debate, "B", "The captain wants out.")
    feedback(debate, [0.5, 0.5])
    speak(debate, "A", "Read the log.")
    speak(debate, "B", "Read the map.")
    return Debate.objects.get(pk=debate.pk)


@pytest.fixture
def debate(two_round_debate):
    return two_round_debate


@pytest.fixture
def live_debate(two_round_debate):
    services.start_debate(two_round_debate.pk)
    return Debate.objects.get(pk=two_round_debate.pk)


@pytest.fixture
def timed_debate(make_user, question):
    alice, bob, judy = make_user("tia", "debater"), make_user("tom", "debater"), make_user("tess", "judge")
    protocol = Protocol(rounds=("simultaneous", "judge_feedback", "sequential"), turn_seconds=30)
    debate = services.create_debate(
        question, protocol, {"A": (alice, 0), "B": (bob, 1)}, judge=judy, answer_order=[0, 1]
    )
    services.start_debate(debate.pk)
    return Debate.objects.get(pk=debate.pk)


def pass_deadline(debate):
    Debate.objects.filter(pk=debate.pk).update(turn_deadline=timezone.now() - timedelta(seconds=1))


# Models and constraints ---------------------------------------------------------------------------


def test_a_person_holds_at_most_one_seat_in_a_debate(debate):
    with pytest.raises(IntegrityError), transaction.atomic():
        Participant.objects.create(debate=debate, seat=Participant.OBSERVER, user=people(debate)["A"])


def test_a_seat_holds_one_person_but_a_debate_may_have_many_observers(debate, make_user):
    with pytest.raises(IntegrityError), transaction.atomic():
        Participant.objects.create(debate=debate, seat="judge", user=make_user("second-judge", "judge"))
    for name in ("watcher-1", "watcher-2"):
        Participant.objects.create(debate=debate, seat=Participant.OBSERVER, user=make_user(name))
    assert debate.participants.filter(seat=Participant.OBSERVER).count() == 2


def test_a_client_id_is_unique_per_seat_but_may_repeat_across_seats(live_debate):
    Turn.objects.create(debate=live_debate, round_index=0, seat="A", kind="speech", text="x", client_id="c-1")
    Turn.objects.create(debate=live_debate, round_index=0, seat="B", kind="speech", text="x", client_id="c-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Turn.objects.create(debate=live_debate, round_index=2, seat="A", kind="speech", text="y", client_id="c-1")


def test_turns_without_a_client_id_are_not_deduplicated(live_debate):
    for _ in range(2):
        Turn.objects.create(debate=live_debate, round_index=0, seat="A", kind="speech", text="x", client_id="")
    assert live_debate.turns.count() == 2


def test_a_judge_gives_at_most_one_verdict_per_debate(debate):
    judge = people(debate)["judge"]
    fields = dict(
        debate=debate,
        judge=judge,
        probabilities=[0.7, 0.3],
        chosen_index=0,
        correct=True,
        reason="r",
        after_turn=0,
        after_seq=0,
        score=math.log2(0.7),
    )
    Verdict.objects.create(**fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        Verdict.objects.create(**fields)


def test_event_sequence_numbers_are_unique_per_debate(debate):
    DebateEvent.objects.create(debate=debate, seq=1, kind="x")
    with pytest.raises(IntegrityError), transaction.atomic():
        DebateEvent.objects.create(debate=debate, seq=1, kind="y")


@pytest.mark.parametrize(
    "answers, correct_index, field",
    [(["only one"], 0, "answers"), (["yes", "  "], 0, "answers"), (["yes", "no"], 2, "correct_index")],
)
def test_a_question_needs_two_answers_and_a_correct_one_among_them(answers, correct_index, field):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        Question(text="q", answers=answers, correct_index=correct_index).full_clean()
    assert field in error.value.message_dict


def test_a_debate_keeps_the_protocol_it_was_created_with(debate):
    assert debate.get_protocol() == Protocol(rounds=("simultaneous", "judge_feedback", "sequential"), char_limit=500)
    assert Debate.objects.get(pk=debate.pk).protocol["char_limit"] == 500


def test_create_debate_refuses_missing_seats_bad_answers_a_person_in_two_seats_and_a_bad_answer_order(
    question, make_user
):
    alice, bob = make_user("ann", "debater"), make_user("ben", "debater")
    protocol = Protocol(rounds=("sequential",))
    before = (Debate.objects.count(), Participant.objects.count())
    for code, debaters, extra in [
        ("bad_seats", {"A": (alice, 0)}, {}),
        ("bad_answer", {"A": (alice, 0), "B": (bob, 2)}, {}),
        ("same_person", {"A": (alice, 0), "B": (alice, 1)}, {}),
        ("same_person", {"A": (alice, 0), "B": (bob, 1)}, {"judge": bob}),
        ("bad_answer_order", {"A": (alice, 0), "B": (bob, 1)}, {"answer_order": [0, 0]}),
    ]:
        with pytest.raises(Refused) as refused:
            services.create_debate(question, protocol, debaters, **extra)
        assert refused.value.code == code
    assert (Debate.objects.count(), Participant.objects.count()) == before


# Turns --------------------------------------------------------------------------------------------


def test_it_refuses_a_speech_before_the_debate_starts(debate):
    assert_refused(debate, "not_started", speak, debate, "A", "too early")


def test_starting_twice_is_refused(live_debate):
    assert_refused(live_debate, "already_started", services.start_debate, live_debate.pk)


def test_a_retried_speech_with_the_same_client_id_is_stored_once(live_debate):
    turn, events = speak(live_debate, "A", "first words", client_id="abc-1")
    assert events
    before = stored(live_debate)
    again, events_again = speak(live_debate, "A", "first words", client_id="abc-1")
    assert again.pk == turn.pk and events_again == []
    assert stored(live_debate) == before
    assert Turn.objects.filter(debate=live_debate, client_id="abc-1").count() == 1


def test_a_retry_after_the_debate_moved_on_returns_the_stored_turn_instead_of_an_error(live_debate):
    turn, _ = speak(live_debate, "A", "first words", client_id="abc-2")
    speak(live_debate, "B", "other words")  # the round closes; A is no longer expected
    again, events = speak(live_debate, "A", "first words", client_id="abc-2")
    assert again.pk == turn.pk and events == []


def test_it_refuses_a_speech_out_of_turn(live_debate):
    speak(live_debate, "A", "a")
    speak(live_debate, "B", "b")
    message = assert_refused(live_debate, "not_your_turn", speak, live_debate, "A", "again")
    assert "waiting for the judge" in message
    feedback(live_debate, [0.6, 0.4])
    assert_refused(live_debate, "not_your_turn", speak, live_debate, "B", "before A in a sequential round")


def test_it_refuses_a_second_speech_in_the_same_simultaneous_round(live_debate):
    speak(live_debate, "A", "a")
    assert_refused(live_debate, "not_your_turn", speak, live_debate, "A", "a second thought")


def test_it_refuses_a_judge_speaking_in_a_debater_round(live_debate):
    assert_refused(
        live_debate,
        "not_your_turn",
        services.submit_action,
        live_debate.pk,
        people(live_debate)["judge"],
        kind="feedback",
        probabilities=[0.5, 0.5],
    )


def test_it_refuses_a_forged_seat(live_debate):
    message = assert_refused(live_debate, "wrong_seat", speak, live_debate, "A", "I am B", seat="B")
    assert message == "you sit in seat A, not B"
    assert_refused(live_debate, "wrong_seat", speak, live_debate, "A", "I am the judge", seat="judge")


def test_it_refuses_people_without_a_speaking_seat(live_debate, make_user):
    stranger = make_user("stranger", "debater")
    observer = make_user("watcher")
    Participant.objects.create(debate=live_debate, seat=Participant.OBSERVER, user=observer)
    for user in (stranger, observer):
        assert_refused(
            live_debate, "not_seated", services.submit_action, live_debate.pk, user, kind="speech", text="let me in"
        )


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"kind": "shout", "text": "x"}, "bad_kind"),
        ({"kind": "speech", "text": "x", "client_id": "c" * 65}, "bad_client_id"),
        ({"kind": "speech", "text": "x", "private_note": "n" * 5001}, "too_long"),
        ({"kind": "speech", "text": "x" * 501}, "too_long"),
        ({"kind": "speech", "text": "   "}, "empty_speech"),
    ],
)
def test_it_refuses_bad_speeches(live_debate, fields, code):
    assert_refused(live_debate, code, services.submit_action, live_debate.pk, people(live_debate)["A"], **fields)


@pytest.mark.parametrize("field", ["text", "private_note", "client_id"])
@pytest.mark.parametrize("unstorable", ["nul\x00byte", "lone \ud800 surrogate"])
def test_it_refuses_text_the_database_cannot_store(live_debate, field, unstorable):
    fields = {"text": "fine words", field: unstorable}
    assert_refused(live_debate, "bad_text", speak, live_debate, "A", **fields)


@pytest.mark.parametrize(
    "probabilities", [[0.5], [0.7, 0.7], ["0.5", "0.5"], [True, False], "ab", None, [float("nan"), 1.0]]
)
def test_it_refuses_judge_feedback_with_bad_probabilities(live_debate, probabilities):
    speak(live_debate, "A", "a")
    speak(live_debate, "B", "b")
    assert_refused(live_debate, "bad_probabilities", feedback, live_debate, probabilities)


def test_a_finished_debate_accepts_no_more_turns(debate):
    finished = finish(debate)
    assert finished.status == Debate.AWAITING_VERDICT and finished.ended_at is not None
    assert_refused(finished, "debate_over", speak, finished, "A", "one more thing")
    assert_refused(finished, "debate_over", feedback, finished, [0.9, 0.1])


def test_the_judge_may_end_the_debate_early(live_debate):
    speak(live_debate, "A", "a")
    speak(live_debate, "B", "b")
    _, events = feedback(live_debate, [0.9, 0.1], end_debate=True)
    assert [e.kind for e in events][-2:] == ["debate_finished", "turn_state"]
    assert Debate.objects.get(pk=live_debate.pk).status == Debate.AWAITING_VERDICT


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_a_speech_saved_while_a_state_is_built_reaches_the_viewer_once(make_user, question, monkeypatch):
    """The state's sequence number and its turns are read at one moment: a speech saved in between
    is in neither, so the viewer gets it once, as the event after the state."""
    alice, bob, judy = make_user("ana", "debater"), make_user("ben", "debater"), make_user("jo", "judge")
    debate = services.create_debate(
        question, Protocol(rounds=("sequential",)), {"A": (alice, 0), "B": (bob, 1)}, judge=judy
    )
    services.start_debate(debate.pk)
    judge = snapshots.viewer_for(debate, judy)

    def speak_from_another_connection():
        try:
            services.submit_action(debate.pk, alice, kind="speech", text="Saved while the state was built.")
        finally:
            connection.close()

    read_turns = snapshots._transcript

    def a_speech_is_saved_first(*args):
        writer = threading.Thread(target=speak_from_another_connection)
        writer.start()
        writer.join()
        return read_turns(*args)

    monkeypatch.setattr(snapshots, "_transcript", a_speech_is_saved_first)
    state = snapshots.state_for(Debate.objects.get(pk=debate.pk), judge)
    monkeypatch.undo()
    after = snapshots.events_after(debate, judge, state["seq"])
    speeches = [t for t in state["turns"] if t["kind"] == "speech"] + [e for e in after if e["kind"] == "speech"]
    assert len(speeches) == 1
    assert Turn.objects.filter(debate=debate, kind="speech").count() == 1


def test_simultaneous_speeches_are_stored_sealed_and_revealed_together(live_debate):
    judge = snapshots.viewer_for(live_debate, people(live_debate)["judge"])
    bob = snapshots.viewer_for(live_debate, people(live_debate)["B"])
    alice = snapshots.viewer_for(live_debate, people(live_debate)["A"])
    _, events = speak(live_debate, "A", "Alice's sealed words", private_note="note to self: bluff")
    assert "Alice's sealed words" not in str([e.data for e in events])
    # The other debater sees that the speech is in; the judge is not even told that much.
    state = snapshots.state_for(Debate.objects.get(pk=live_debate.pk), bob)
    assert state["turns"] == [
        {"round": 0, "seat": "A", "kind": "speech", "at": state["turns"][0]["at"], "sealed": True}
    ]
    assert snapshots.state_for(Debate.objects.get(pk=live_debate.pk), judge)["turns"] == []
    mine = snapshots.state_for(Debate.objects.get(pk=live_debate.pk), alice)["turns"][0]
    assert mine["text"] == "Alice's sealed words" and mine["private_note"] == "note to self: bluff"
    _, events = speak(live_debate, "B", "Bob's words")
    revealed = [e for e in events if e.kind == "speeches_revealed"][0]
    assert [(s["seat"], s["text"]) for s in revealed.data["speeches"]] == [
        ("A", "Alice's sealed words"),
        ("B", "Bob's words"),
    ]
    assert "note to self" not in str([e.data for e in DebateEvent.objects.filter(debate=live_debate)])


def test_every_stored_event_has_the_next_sequence_number(debate):
    finish(debate)
    seqs = list(DebateEvent.objects.filter(debate=debate).values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert Debate.objects.get(pk=debate.pk).last_seq == len(seqs)


# Verdicts -----------------------------------------------------------------------------------------


def test_it_refuses_a_verdict_before_the_debate_ends(live_debate):
    judge = people(live_debate)["judge"]
    assert_refused(live_debate, "debate_not_over", submit_verdict, live_debate.pk, judge, [0.8, 0.2], "too soon")


def test_it_refuses_a_verdict_from_anyone_but_the_judge(debate, make_user):
    finished = finish(debate)
    for user in (people(finished)["A"], make_user("outsider", "judge")):
        assert_refused(finished, "not_judge", submit_verdict, finished.pk, user, [0.8, 0.2], "I know best")


def test_it_refuses_a_second_verdict_from_the_same_judge(debate):
    finished = finish(debate)
    judge = people(finished)["judge"]
    submit_verdict(finished.pk, judge, [0.8, 0.2], "first thoughts", client_id="v-1")
    assert_refused(finished, "already_judged", submit_verdict, finished.pk, judge, [0.2, 0.8], "second thoughts")
    again, events = submit_verdict(finished.pk, judge, [0.8, 0.2], "first thoughts", client_id="v-1")
    assert events == [] and Verdict.objects.filter(debate=finished).count() == 1


def test_it_refuses_a_fifty_fifty_verdict_for_two_answers(debate):
    finished = finish(debate)
    message = assert_refused(
        finished, "no_choice", submit_verdict, finished.pk, people(finished)["judge"], [0.5, 0.5], "cannot tell"
    )
    assert "tied" in message


@pytest.mark.parametrize("reason", ["", "   \n", None])
def test_it_refuses_a_verdict_without_a_reason(debate, reason):
    finished = finish(debate)
    assert_refused(
        finished, "reason_required", submit_verdict, finished.pk, people(finished)["judge"], [0.8, 0.2], reason
    )


@pytest.mark.parametrize(
    "probabilities, seconds, code",
    [
        ([0.8], None, "bad_probabilities"),
        ([0.8, 0.3], None, "bad_probabilities"),
        (["a", "b"], None, "bad_probabilities"),
        ([0.8, 0.2], "soon", "bad_seconds"),
        ([0.8, 0.2], -1, "bad_seconds"),
    ],
)
def test_it_refuses_a_malformed_verdict(debate, probabilities, seconds, code):
    finished = finish(debate)
    assert_refused(
        finished, code, submit_verdict, finished.pk, people(finished)["judge"], probabilities, "because", seconds
    )


@pytest.mark.parametrize("reason", ["nul\x00byte", "lone \udfff surrogate"])
def test_it_refuses_a_verdict_reason_the_database_cannot_store(debate, reason):
    finished = finish(debate)
    assert_refused(finished, "bad_text", submit_verdict, finished.pk, people(finished)["judge"], [0.8, 0.2], reason)


def test_it_refuses_a_verdict_on_an_abandoned_debate(live_debate):
    Debate.objects.filter(pk=live_debate.pk).update(status=Debate.ABANDONED)
    assert_refused(
        live_debate,
        "debate_abandoned",
        submit_verdict,
        live_debate.pk,
        people(live_debate)["judge"],
        [0.8, 0.2],
        "too late",
    )


@pytest.mark.parametrize("p_correct", [0.8, 0.3, 0.999])
def test_a_verdict_stores_the_log_score_of_the_correct_answer(debate, p_correct):
    finished = finish(debate)
    correct = finished.question.correct_index
    canonical = [p_correct if i == correct else 1 - p_correct for i in range(2)]
    verdict, events = submit_verdict(
        finished.pk, people(finished)["judge"], shown(finished, canonical), "the log says so", seconds_spent=42
    )
    verdict.refresh_from_db()
    assert verdict.score == pytest.approx(math.log2(p_correct))
    assert verdict.scoring_rule == "log"
    assert verdict.probabilities == pytest.approx(canonical)
    assert verdict.correct == (p_correct > 0.5)
    assert verdict.chosen_index == (correct if p_correct > 0.5 else 1 - correct)
    assert verdict.reason == "the log says so" and verdict.seconds_spent == 42
    assert verdict.after_turn == finished.turns.count() and verdict.after_seq == finished.last_seq
    assert Debate.objects.get(pk=finished.pk).status == Debate.COMPLETE
    assert [e.kind for e in events] == ["verdict_given"]


def test_probabilities_are_mapped_between_the_shown_order_and_the_questions_order(make_user):
    question = Question.objects.create(
        text="Which colour?", answers=["red", "green", "blue"], correct_index=1, hidden_material="green"
    )
    a, b, judge = make_user("d1", "debater"), make_user("d2", "debater"), make_user("j1", "judge")
    debate = services.create_debate(
        question,
        Protocol(rounds=("judge_feedback", "sequential"), judge_may_end=True),
        {"A": (a, 1), "B": (b, 2)},
        judge=judge,
        answer_order=[2, 0, 1],
    )
    services.start_debate(debate.pk)
    viewer = snapshots.viewer_for(debate, judge)
    state = snapshots.state_for(Debate.objects.get(pk=debate.pk), viewer)
    assert state["question"]["answers"] == ["blue", "red", "green"]
    assert {s["seat"]: s["answer"] for s in state["seats"] if "answer" in s} == {"A": 2, "B": 0}

    # The judge sees blue, red, green and believes blue 50%, red 30%, green 20%.
    turn, events = feedback(debate, [0.5, 0.3, 0.2], end_debate=True)
    assert turn.probabilities == [0.3, 0.2, 0.5]  # red, green, blue
    assert [e.data["probabilities"] for e in events if e.kind == "feedback"] == [[0.5, 0.3, 0.2]]
    state = snapshots.state_for(Debate.objects.get(pk=debate.pk), viewer)
    assert state["turns"][0]["probabilities"] == [0.5, 0.3, 0.2]

    verdict, _ = submit_verdict(debate.pk, judge, [0.1, 0.2, 0.7], "green, after all")
    assert verdict.probabilities == [0.2, 0.7, 0.1]
    assert verdict.chosen_index == 1 and verdict.correct
    assert verdict.score == pytest.approx(math.log2(0.7))


# Turn time limits -----------------------------------------------------------------------------------


def test_starting_a_timed_debate_sets_the_first_deadline(timed_debate):
    seconds = (timed_debate.turn_deadline - timed_debate.started_at).total_seconds()
    assert seconds == pytest.approx(30, abs=1)


def test_a_turn_whose_deadline_has_not_passed_is_left_alone(timed_debate):
    before = stored(timed_debate)
    assert services.time_out_turn(timed_debate.pk) == []
    assert stored(timed_debate) == before


def test_a_passed_deadline_times_out_every_waiting_debater_and_moves_on(timed_debate):
    speak(timed_debate, "A", "Alice made it in time")
    pass_deadline(timed_debate)
    events = services.time_out_turn(timed_debate.pk)
    kinds = [e.kind for e in events]
    assert [(e.kind, e.data.get("seat")) for e in events if e.kind == "timed_out"] == [("timed_out", "B")]
    revealed = [e for e in events if e.kind == "speeches_revealed"][0].data["speeches"]
    assert [(s["seat"], s["text"]) for s in revealed] == [("A", "Alice made it in time")]
    assert "round_started" in kinds and kinds[-1] == "turn_state"
    turns = list(timed_debate.turns.values_list("seat", "kind"))
    assert turns == [("A", "speech"), ("B", "timeout")]
    debate = Debate.objects.get(pk=timed_debate.pk)
    assert debate.engine().expected_seats() == ("judge",)
    assert debate.turn_deadline is None  # the judge has no time limit
    assert services.time_out_turn(timed_debate.pk) == []  # idempotent


def test_when_nobody_speaks_both_debaters_time_out(timed_debate):
    pass_deadline(timed_debate)
    events = services.time_out_turn(timed_debate.pk)
    assert [e.data["seat"] for e in events if e.kind == "timed_out"] == ["A", "B"]
    assert "speeches_revealed" not in [e.kind for e in events]
    assert list(timed_debate.turns.values_list("seat", "kind")) == [("A", "timeout"), ("B", "timeout")]


def test_a_timed_out_sequential_turn_passes_to_the_next_debater_with_a_fresh_deadline(timed_debate):
    speak(timed_debate, "A", "a")
    speak(timed_debate, "B", "b")
    feedback(timed_debate, [0.6, 0.4])
    pass_deadline(timed_debate)
    services.time_out_turn(timed_debate.pk)
    debate = Debate.objects.get(pk=timed_debate.pk)
    assert list(debate.turns.filter(round_index=2).values_list("seat", "kind")) == [("A", "timeout")]
    assert debate.engine().expected_seats() == ("B",)
    assert debate.turn_deadline > timezone.now() + timedelta(seconds=25)


def test_no_time_out_happens_in_a_debate_that_is_not_live(timed_debate):
    pass_deadline(timed_debate)
    Debate.objects.filter(pk=timed_debate.pk).update(status=Debate.ABANDONED)
    before = stored(timed_debate)
    assert services.time_out_turn(timed_debate.pk) == []
    assert stored(timed_debate) == before
