"""The pure protocol engine, driven by random action sequences for random valid protocols.

Every step checks the engine's invariants: nobody acts out of turn, a refused action changes
nothing, simultaneous speeches stay sealed until the last one is in, limits hold, a finished
debate accepts nothing, and replaying the accepted actions reaches the same state."""

import copy
import itertools
import json
import math
from collections import namedtuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from debates.protocol import (
    JUDGE,
    JUDGE_FEEDBACK,
    ROUND_KINDS,
    SEQUENTIAL,
    SIMULTANEOUS,
    Action,
    DebateEngine,
    Protocol,
    Refused,
    validate_probabilities,
)

STRANGER = "X"
Step = namedtuple("Step", "action events kind_before round_before round_after finished")


@st.composite
def protocols(draw):
    debaters = draw(st.sampled_from([("A",), ("A", "B"), ("A", "B", "C")]))
    speaking_order = draw(st.one_of(st.none(), st.permutations(debaters).map(tuple)))
    return Protocol(
        rounds=tuple(draw(st.lists(st.sampled_from(ROUND_KINDS), min_size=1, max_size=6))),
        debaters=debaters,
        speaking_order=speaking_order,
        char_limit=draw(st.integers(min_value=1, max_value=40)),
        turn_seconds=draw(st.one_of(st.none(), st.integers(min_value=2, max_value=600))),
        judge_may_end=draw(st.booleans()),
    )


def valid_probabilities(answer_count):
    return st.lists(st.integers(min_value=1, max_value=100), min_size=answer_count, max_size=answer_count).map(
        lambda weights: tuple(w / sum(weights) for w in weights)
    )


def any_probabilities(answer_count):
    number = st.floats(allow_nan=True, allow_infinity=True, width=32)
    return st.one_of(
        st.none(),
        valid_probabilities(answer_count),
        st.lists(number, min_size=0, max_size=answer_count + 1).map(tuple),
        st.lists(st.floats(min_value=0, max_value=1), min_size=answer_count, max_size=answer_count).map(tuple),
    )


def texts(protocol):
    return st.one_of(
        st.text(min_size=0, max_size=protocol.char_limit + 5),
        st.text(alphabet=" \n\t", max_size=3),
        st.integers(min_value=protocol.char_limit + 1, max_value=protocol.char_limit + 50).map(lambda n: "y" * n),
    )


@st.composite
def an_action(draw, engine, answer_count):
    """Mostly a plausible action from a seat that may act; sometimes anything at all."""
    protocol = engine.protocol
    expected = engine.expected_seats()
    if expected and draw(st.integers(0, 3)) > 0:
        seat = draw(st.sampled_from(expected))
    else:
        seat = draw(st.sampled_from(protocol.debaters + (JUDGE, STRANGER)))
    if draw(st.integers(0, 4)) == 0:
        kind = draw(st.sampled_from(["speech", "feedback", "timeout", "shout"]))
    else:
        kind = "feedback" if seat == JUDGE else "speech"
    return Action(
        seat=seat,
        kind=kind,
        text=draw(texts(protocol)),
        probabilities=draw(any_probabilities(answer_count)),
        end_debate=draw(st.integers(0, 5)) == 0,
    )


def state_of(engine):
    return copy.deepcopy(vars(engine))


def probabilities_are_valid(probabilities, answer_count):
    if probabilities is None or len(probabilities) != answer_count:
        return False
    if any(math.isnan(p) or not 0 <= p <= 1 for p in probabilities):
        return False
    return abs(sum(probabilities) - 1) <= 1e-6


def drive(engine, data, answer_count, steps):
    """Applies random actions, checking every invariant; returns the accepted steps."""
    accepted = []
    for _ in range(steps):
        action = data.draw(an_action(engine, answer_count))
        before = state_of(engine)
        expected = engine.expected_seats()
        kind_before, round_before = engine.round_kind, engine.round_index
        try:
            events = engine.apply(action)
        except Refused as refused:
            assert state_of(engine) == before, f"refused {action} but the engine changed"
            assert refused.code and refused.message
            if before["finished"]:
                assert refused.code == "debate_over"
            elif action.seat not in expected:
                assert refused.code == "not_your_turn"
            continue
        assert not before["finished"], "a finished debate accepted an action"
        assert action.seat in expected, f"{action.seat} acted out of turn (expected {expected})"
        check_accepted(engine, action, events, kind_before, round_before, answer_count)
        accepted.append(Step(action, events, kind_before, round_before, engine.round_index, engine.finished))
    return accepted


def check_accepted(engine, action, events, kind_before, round_before, answer_count):
    protocol = engine.protocol
    assert action.kind in ("speech", "feedback", "timeout")
    if action.kind == "speech":
        assert action.seat in protocol.debaters and kind_before in (SEQUENTIAL, SIMULTANEOUS)
        assert action.text.strip() and len(action.text) <= protocol.char_limit
    if action.kind == "feedback":
        assert action.seat == JUDGE and kind_before == JUDGE_FEEDBACK
        assert probabilities_are_valid(action.probabilities, answer_count)
        assert len(action.text) <= protocol.char_limit
        if action.end_debate:
            assert protocol.judge_may_end
            assert engine.finished and engine.ended_by_judge
            assert events[-1].kind == "debate_finished" and events[-1].data["reason"] == "judge_ended"
    if engine.finished:
        assert [e.kind for e in events].count("debate_finished") == 1
        assert engine.expected_seats() == ()
    elif engine.round_index != round_before:
        assert events[-1].kind == "round_started"
        assert events[-1].data == {"round": engine.round_index, "kind": protocol.rounds[engine.round_index]}


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(protocol=protocols(), answer_count=st.integers(2, 4), data=st.data())
def test_nobody_acts_out_of_turn_and_a_refused_action_changes_nothing(protocol, answer_count, data):
    engine = DebateEngine(protocol, answer_count)
    drive(engine, data, answer_count, steps=data.draw(st.integers(0, 40)))


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(protocol=protocols(), answer_count=st.integers(2, 4), data=st.data())
def test_the_engine_replayed_from_its_accepted_actions_reaches_the_same_state(protocol, answer_count, data):
    engine = DebateEngine(protocol, answer_count)
    accepted = drive(engine, data, answer_count, steps=data.draw(st.integers(0, 40)))
    replayed = DebateEngine.replay(protocol, answer_count, [step.action for step in accepted])
    assert state_of(replayed) == state_of(engine)


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(protocol=protocols(), answer_count=st.integers(2, 4), data=st.data())
def test_an_engine_restored_from_its_stored_state_equals_the_replay_and_goes_on_alike(protocol, answer_count, data):
    """The live layer keeps the engine's state with the debate instead of replaying every action;
    the replay is the check: restored, the engine is the same and accepts and refuses alike."""
    engine = DebateEngine(protocol, answer_count)
    accepted = drive(engine, data, answer_count, steps=data.draw(st.integers(0, 40)))
    stored = json.loads(json.dumps(engine.to_state()))
    restored = DebateEngine.from_state(protocol, answer_count, stored)
    replayed = DebateEngine.replay(protocol, answer_count, [step.action for step in accepted])
    assert state_of(restored) == state_of(replayed) == state_of(engine)
    assert restored.to_state() == engine.to_state()
    for _ in range(data.draw(st.integers(0, 10))):
        action = data.draw(an_action(engine, answer_count))
        outcomes = []
        for twin in (engine, restored):
            try:
                outcomes.append(("accepted", twin.apply(action)))
            except Refused as refused:
                outcomes.append(("refused", refused.code))
        assert outcomes[0] == outcomes[1]
        assert restored.to_state() == engine.to_state()


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(protocol=protocols(), answer_count=st.integers(2, 4), data=st.data())
def test_simultaneous_speeches_stay_sealed_until_the_last_one_is_in(protocol, answer_count, data):
    engine = DebateEngine(protocol, answer_count)
    sealed = {}  # seat -> text, for the open simultaneous round
    for step in drive(engine, data, answer_count, steps=data.draw(st.integers(0, 60))):
        kinds = [e.kind for e in step.events]
        if step.kind_before != SIMULTANEOUS:
            assert "speech_sealed" not in kinds and "speeches_revealed" not in kinds
            continue
        if step.action.kind == "speech":
            assert step.events[0].kind == "speech_sealed"
            assert step.events[0].data == {"seat": step.action.seat, "round": step.round_before}
            sealed[step.action.seat] = step.action.text
        round_closed = step.finished or step.round_after != step.round_before
        round_events = list(
            itertools.takewhile(
                lambda e: e.kind not in ("speeches_revealed", "round_started", "debate_finished"), step.events
            )
        )
        for event in round_events:
            assert event.kind in ("speech_sealed", "timed_out") and "text" not in event.data, event
        if not round_closed:
            assert "speeches_revealed" not in kinds, "a sealed speech was revealed before the round closed"
            continue
        if sealed:
            revealed = step.events[kinds.index("speeches_revealed")].data
            assert revealed == {
                "round": step.round_before,
                "speeches": [{"seat": s, "text": sealed[s]} for s in protocol.order if s in sealed],
            }
        else:
            assert "speeches_revealed" not in kinds
        sealed = {}


@settings(max_examples=80, deadline=None)
@given(protocol=protocols(), answer_count=st.integers(2, 4), data=st.data())
def test_a_debate_of_valid_turns_ends_after_every_round_and_then_accepts_nothing(protocol, answer_count, data):
    engine = DebateEngine(protocol, answer_count)
    actions = 0
    while not engine.finished:
        seat = engine.expected_seats()[0]
        if seat == JUDGE:
            action = Action(JUDGE, "feedback", probabilities=data.draw(valid_probabilities(answer_count)))
        else:
            action = Action(seat, "speech", text="z" * protocol.char_limit)
        events = engine.apply(action)
        actions += 1
        assert events, "an accepted action always produces at least one event"
    debater_rounds = sum(1 for kind in protocol.rounds if kind != JUDGE_FEEDBACK)
    judge_rounds = len(protocol.rounds) - debater_rounds
    assert actions == debater_rounds * len(protocol.debaters) + judge_rounds
    assert not engine.ended_by_judge and engine.round_kind is None
    for seat in protocol.debaters + (JUDGE, STRANGER):
        for kind in ("speech", "feedback", "timeout"):
            with pytest.raises(Refused) as refused:
                engine.apply(Action(seat, kind, text="late", probabilities=(1.0,) + (0.0,) * (answer_count - 1)))
            assert refused.value.code == "debate_over"


@settings(max_examples=80, deadline=None)
@given(protocol=protocols(), answer_count=st.integers(2, 4), data=st.data())
def test_the_speaking_order_is_followed_in_sequential_rounds(protocol, answer_count, data):
    engine = DebateEngine(protocol, answer_count)
    while not engine.finished:
        expected = engine.expected_seats()
        if engine.round_kind == SEQUENTIAL:
            spoken = len(engine._acted)
            assert expected == (protocol.order[spoken],)
            engine.apply(Action(expected[0], data.draw(st.sampled_from(["speech", "timeout"])), text="k"))
        elif engine.round_kind == SIMULTANEOUS:
            assert set(expected) <= set(protocol.debaters)
            engine.apply(Action(data.draw(st.sampled_from(expected)), "speech", text="k"))
        else:
            assert expected == (JUDGE,)
            engine.apply(Action(JUDGE, "timeout"))


def test_it_refuses_a_speech_out_of_turn():
    engine = DebateEngine(Protocol(rounds=(SEQUENTIAL,)), 2)
    with pytest.raises(Refused) as refused:
        engine.apply(Action("B", "speech", text="me first"))
    assert refused.value.code == "not_your_turn"
    assert refused.value.message == "it is not debater B's turn: waiting for debater A"


def test_it_refuses_a_speech_over_the_character_limit_and_accepts_one_at_the_limit():
    engine = DebateEngine(Protocol(rounds=(SEQUENTIAL,), char_limit=10), 2)
    with pytest.raises(Refused) as refused:
        engine.apply(Action("A", "speech", text="x" * 11))
    assert refused.value.code == "too_long"
    assert "at most 10 characters (this one has 11)" in refused.value.message
    assert engine.apply(Action("A", "speech", text="x" * 10))[0].kind == "speech"


def test_it_refuses_an_empty_or_blank_speech():
    engine = DebateEngine(Protocol(rounds=(SEQUENTIAL,)), 2)
    for text in ("", "   \n\t"):
        with pytest.raises(Refused) as refused:
            engine.apply(Action("A", "speech", text=text))
        assert refused.value.code == "empty_speech"


def test_the_judge_may_end_the_debate_only_when_the_protocol_allows_it():
    allowed = DebateEngine(Protocol(rounds=(JUDGE_FEEDBACK, SEQUENTIAL), judge_may_end=True), 2)
    events = allowed.apply(Action(JUDGE, "feedback", probabilities=(0.9, 0.1), end_debate=True))
    assert allowed.finished and allowed.ended_by_judge
    assert [e.kind for e in events] == ["feedback", "debate_finished"]

    forbidden = DebateEngine(Protocol(rounds=(JUDGE_FEEDBACK, SEQUENTIAL), judge_may_end=False), 2)
    with pytest.raises(Refused) as refused:
        forbidden.apply(Action(JUDGE, "feedback", probabilities=(0.9, 0.1), end_debate=True))
    assert refused.value.code == "cannot_end"
    assert forbidden.round_index == 0 and not forbidden.finished


def test_debaters_give_speeches_and_the_judge_gives_feedback():
    engine = DebateEngine(Protocol(rounds=(SEQUENTIAL, JUDGE_FEEDBACK), debaters=("A",)), 2)
    with pytest.raises(Refused) as refused:
        engine.apply(Action("A", "feedback", probabilities=(0.5, 0.5)))
    assert refused.value.code == "wrong_action"
    engine.apply(Action("A", "speech", text="hello"))
    with pytest.raises(Refused) as refused:
        engine.apply(Action(JUDGE, "speech", text="hello"))
    assert refused.value.code == "wrong_action"


@pytest.mark.parametrize(
    "probabilities, complaint",
    [
        (None, "give one probability for each of the 2 answers"),
        ((1.0,), "give one probability for each of the 2 answers"),
        ((0.5, 0.3, 0.2), "give one probability for each of the 2 answers"),
        ((1.2, -0.2), "each probability must be between 0 and 1"),
        ((float("nan"), 1.0), "each probability must be between 0 and 1"),
        ((float("inf"), 0.0), "each probability must be between 0 and 1"),
        ((0.6, 0.6), "probabilities must add up to 1 (they add up to 1.2000)"),
        (("0.5", "0.5"), "probabilities must be numbers"),
        ((True, False), "probabilities must be numbers"),
        (([0.5], [0.5]), "probabilities must be numbers"),
    ],
)
def test_it_refuses_bad_probabilities_with_a_clear_message(probabilities, complaint):
    with pytest.raises(Refused) as refused:
        validate_probabilities(probabilities, 2)
    assert refused.value.code == "bad_probabilities"
    assert refused.value.message == complaint


@given(valid_probabilities(3))
def test_it_accepts_probabilities_that_add_up_to_one(probabilities):
    assert validate_probabilities(probabilities, 3) == tuple(probabilities)


@pytest.mark.parametrize(
    "fields, complaint",
    [
        ({"rounds": ()}, "a protocol needs at least one round"),
        ({"rounds": ("sequential", "debate")}, "round 2: unknown kind 'debate'"),
        ({"debaters": ()}, "debaters must be distinct seat names other than 'judge'"),
        ({"debaters": ("A", "A")}, "debaters must be distinct seat names other than 'judge'"),
        ({"debaters": ("A", "judge")}, "debaters must be distinct seat names other than 'judge'"),
        ({"speaking_order": ("A",)}, "speaking_order must list each debater once"),
        ({"speaking_order": ("A", "A")}, "speaking_order must list each debater once"),
        ({"char_limit": 0}, "char_limit must be between 1 and 100000"),
        ({"char_limit": 100_001}, "char_limit must be between 1 and 100000"),
        ({"turn_seconds": 1}, "turn_seconds must be between 2 and 86400, or empty"),
        ({"turn_seconds": 86_401}, "turn_seconds must be between 2 and 86400, or empty"),
        ({"scoring_rule": "brier"}, "scoring_rule must be log, quadratic or spherical"),
        ({"turn_penalty": 1.5}, "turn_penalty must be between 0 and 1"),
    ],
)
def test_a_bad_protocol_is_refused_with_a_clear_error(fields, complaint):
    with pytest.raises(ValueError) as error:
        Protocol(**fields)
    assert complaint in str(error.value)


def test_a_protocol_with_several_problems_names_them_all():
    with pytest.raises(ValueError) as error:
        Protocol(rounds=(), char_limit=0, turn_seconds=1)
    message = str(error.value)
    assert "at least one round" in message and "char_limit" in message and "turn_seconds" in message


def test_a_stored_protocol_with_unknown_fields_is_refused():
    with pytest.raises(ValueError) as error:
        Protocol.from_dict({"rounds": ["sequential"], "colour": "blue", "mood": 1})
    assert str(error.value) == "unknown protocol fields: colour, mood"


@given(protocols())
def test_a_protocol_survives_storage_as_json(protocol):
    assert Protocol.from_dict(json.loads(json.dumps(protocol.to_dict()))) == protocol
