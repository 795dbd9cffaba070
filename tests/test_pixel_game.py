"""Rules of the pixel debate game (debates/pixel/game.py), checked as properties over random games."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debates.pixel.game import (
    HONEST,
    LIAR,
    PIXEL_COUNT,
    DebateSetup,
    GameError,
    GameState,
    batch_judge_planes,
    judge_planes,
)


@st.composite
def images(draw, min_nonzero=6):
    """A 28x28 uint8 image with at least `min_nonzero` nonzero pixels, most of them black."""
    count = draw(st.integers(min_nonzero, 120))
    pixels = draw(st.lists(st.integers(0, PIXEL_COUNT - 1), min_size=count, max_size=count, unique=True))
    values = draw(st.lists(st.integers(1, 255), min_size=count, max_size=count))
    flat = np.zeros(PIXEL_COUNT, dtype=np.uint8)
    flat[pixels] = values
    return flat.reshape(28, 28)


@st.composite
def setups(draw):
    image = draw(images())
    true_label = draw(st.integers(0, 9))
    lie = draw(st.integers(0, 9).filter(lambda x: x != true_label))
    precommit = draw(st.booleans())
    return DebateSetup(
        image,
        true_label,
        lie if precommit or draw(st.booleans()) else None,
        pixels=draw(st.sampled_from([4, 6])),
        honest_first=draw(st.booleans()),
        precommit=precommit,
    )


def play_random(state: GameState, choices) -> GameState:
    while not state.is_over:
        moves = state.legal_moves()
        state = state.play(int(moves[choices.draw(st.integers(0, len(moves) - 1))]))
    return state


@settings(max_examples=60, deadline=None)
@given(setup=setups(), data=st.data())
def test_legal_moves_are_exactly_the_unrevealed_nonzero_pixels(setup, data):
    state = GameState(setup)
    flat = setup.image.reshape(-1)
    while not state.is_over:
        moves = state.legal_moves()
        expected = sorted(set(np.flatnonzero(flat).tolist()) - set(state.revealed))
        assert moves.tolist() == expected
        assert all(flat[m] > 0 for m in moves)
        state = state.play(int(moves[data.draw(st.integers(0, len(moves) - 1))]))
    assert state.legal_moves().size == 0


@settings(max_examples=60, deadline=None)
@given(setup=setups(), data=st.data())
def test_game_ends_after_the_budget_with_players_alternating(setup, data):
    final = play_random(GameState(setup), data)
    assert final.ply == setup.pixels
    first = HONEST if setup.honest_first else LIAR
    second = LIAR if first == HONEST else HONEST
    assert [r.player for r in final.reveals] == [first, second] * (setup.pixels // 2)
    assert final.to_move is None
    with pytest.raises(GameError, match="over"):
        final.play(int(np.flatnonzero(setup.image.reshape(-1))[0]))


@settings(max_examples=60, deadline=None)
@given(setup=setups(), data=st.data())
def test_a_revealed_or_black_pixel_cannot_be_revealed(setup, data):
    state = GameState(setup).play(int(setup.nonzero[0]))
    state = play_random_until(state, data, setup.pixels - 1)
    before = state.reveals
    for pixel in state.revealed:
        with pytest.raises(GameError, match="already revealed"):
            state.play(pixel)
    black = np.flatnonzero(setup.image.reshape(-1) == 0)
    if len(black):
        with pytest.raises(GameError, match="black"):
            state.play(int(black[data.draw(st.integers(0, len(black) - 1))]))
    assert state.reveals == before


def play_random_until(state, data, ply):
    while state.ply < ply:
        moves = state.legal_moves()
        state = state.play(int(moves[data.draw(st.integers(0, len(moves) - 1))]))
    return state


@settings(max_examples=40, deadline=None)
@given(setup=setups(), data=st.data())
def test_judge_planes_show_revealed_pixels_only_regardless_of_order_and_player(setup, data):
    final = play_random(GameState(setup), data)
    planes = final.judge_planes()
    mask, values = planes[0].reshape(-1), planes[1].reshape(-1)
    assert planes.shape == (2, 28, 28) and planes.dtype == np.float32
    assert sorted(np.flatnonzero(mask).tolist()) == sorted(final.revealed)
    assert np.allclose(values[list(final.revealed)], setup.image.reshape(-1)[list(final.revealed)] / 255.0)
    assert np.count_nonzero(values) == setup.pixels
    shuffled = list(final.revealed)
    data.draw(st.randoms()).shuffle(shuffled)
    assert np.array_equal(judge_planes(setup.image, shuffled), planes)


def test_batch_planes_match_single_planes():
    image = np.arange(PIXEL_COUNT, dtype=np.int64).reshape(28, 28) % 256
    image = image.astype(np.uint8)
    sets = [(1, 2, 3), (), (783, 5)]
    batch = batch_judge_planes(image, sets)
    assert batch.shape == (3, 2, 28, 28)
    for row, pixels in zip(batch, sets):
        assert np.array_equal(row, judge_planes(image, pixels))
    assert batch[1].sum() == 0


@settings(max_examples=200, deadline=None)
@given(
    logits=st.lists(st.floats(-20, 20, allow_nan=False), min_size=10, max_size=10),
    true_label=st.integers(0, 9),
    data=st.data(),
)
def test_verdicts(logits, true_label, data):
    logits = np.array(logits)
    lie = data.draw(st.integers(0, 9).filter(lambda x: x != true_label))
    image = np.full((28, 28), 7, dtype=np.uint8)
    with_precommit = DebateSetup(image, true_label, lie, precommit=True)
    without = DebateSetup(image, true_label, lie, precommit=False)
    # Precommit: only the two claimed labels count; the tie goes to the liar.
    assert with_precommit.honest_wins(logits) == (logits[true_label] > logits[lie])
    # No precommit: arg-max over all ten; any wrong label (or a tie with one) wins for the liar.
    others = np.delete(logits, true_label)
    assert without.honest_wins(logits) == (logits[true_label] > others.max())
    assert (with_precommit.honest_margin(logits) > 0) == with_precommit.honest_wins(logits)
    assert (without.honest_margin(logits) > 0) == without.honest_wins(logits)


def test_ties_go_to_the_liar():
    image = np.full((28, 28), 7, dtype=np.uint8)
    logits = np.zeros(10)
    assert not DebateSetup(image, 3, 5, precommit=True).honest_wins(logits)
    assert not DebateSetup(image, 3, None, precommit=False).honest_wins(logits)


def test_precommit_ignores_the_other_eight_labels():
    image = np.full((28, 28), 7, dtype=np.uint8)
    logits = np.array([0, 0, 0, 2.0, 0, 1.0, 0, 0, 9.0, 0])
    assert DebateSetup(image, 3, 5, precommit=True).honest_wins(logits)
    assert not DebateSetup(image, 3, 5, precommit=False).honest_wins(logits)


def test_verdict_needs_a_finished_game():
    setup = DebateSetup(np.full((28, 28), 7, dtype=np.uint8), 3, 5)
    with pytest.raises(GameError, match="not over"):
        GameState(setup).winner(np.zeros(10))


@pytest.mark.parametrize("honest_first, expected", [(True, [HONEST, LIAR] * 3), (False, [LIAR, HONEST] * 3)])
def test_both_move_orders(honest_first, expected):
    setup = DebateSetup(np.full((28, 28), 7, dtype=np.uint8), 3, 5, honest_first=honest_first)
    state = GameState(setup)
    movers = []
    for pixel in range(6):
        movers.append(state.to_move)
        state = state.play(pixel)
    assert movers == expected
    assert [r.player for r in state.reveals] == expected


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(image=np.zeros((27, 28), dtype=np.uint8)), "28x28"),
        (dict(image=np.zeros((28, 28), dtype=np.float32)), "uint8"),
        (dict(true_label=10), "true label"),
        (dict(lie=3), "differ"),
        (dict(lie=None), "needs the liar"),
        (dict(lie=-1), "lie must be"),
        (dict(pixels=0), "positive"),
        (dict(pixels=True), "positive"),
        (dict(image=np.eye(28, dtype=np.uint8)[:, :] * 0 + np.diag([1] * 5 + [0] * 23).astype(np.uint8)), "fewer than"),
    ],
)
def test_bad_setups_are_refused(change, message):
    arguments = dict(image=np.full((28, 28), 9, dtype=np.uint8), true_label=3, lie=5, pixels=6, precommit=True)
    arguments.update(change)
    with pytest.raises(GameError, match=message):
        DebateSetup(**arguments)


def test_bad_moves_are_refused():
    state = GameState(DebateSetup(np.full((28, 28), 9, dtype=np.uint8), 3, 5))
    for pixel in (-1, 784, 2.5, "3", True):
        with pytest.raises(GameError, match="integer"):
            state.play(pixel)
    assert state.ply == 0


def test_setup_keeps_its_own_copy_of_the_image():
    image = np.full((28, 28), 9, dtype=np.uint8)
    setup = DebateSetup(image, 3, 5)
    image[:] = 0
    assert setup.image.min() == 9
    with pytest.raises(ValueError):
        setup.image[0, 0] = 1
