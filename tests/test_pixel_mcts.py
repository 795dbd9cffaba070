"""Tree search for the pixel debate (debates/pixel/mcts.py) and self-play on top of it (selfplay.py).

The judges here are small numpy functions built for the purpose (no trained network): a judge with
a forced win that only lookahead finds, and a template judge from MNIST class means. Each computes
every row on its own, so its logits do not depend on how positions are batched.
"""

import numpy as np
import pytest

from debates.pixel import mnist
from debates.pixel.game import PIXEL_COUNT, DebateSetup, GameError, GameState
from debates.pixel.mcts import DriverStats, JudgeCache, SearchConfig, TreeSearch, play_moves, run_lockstep, run_plain
from debates.pixel.selfplay import (
    SelfPlayGame,
    choose_move,
    format_table2,
    image_outcomes,
    judge_accuracy,
    play_game,
    play_games,
    random_nonzero_masks,
    sample_image_ids,
    table2_games,
    table2_rows,
    verdict,
)
from debates.proportions import wilson_interval

TRUE, LIE = 1, 2

# The fork: whoever owns it moves first and wins by revealing A, which threatens two pairs (A, B)
# and (A, C). Each pair is spoiled if its poison pixel is revealed, and the other side has only one
# move to spoil one pair before the fork's owner completes the other. Decoy pairs (D, E), (F, G) win
# too, but a single reply spoils them. No partial mask looks like a win, so only lookahead finds A.
A, B, C, PB, PC, D, E, PDE, F, G, PFG = 100, 130, 160, 190, 220, 250, 280, 310, 340, 370, 400
PAIRS = {(A, B): PB, (A, C): PC, (D, E): PDE, (F, G): PFG}


def fork_image():
    flat = np.zeros(PIXEL_COUNT, dtype=np.uint8)
    flat[[A, B, C, PB, PC, D, E, PDE, F, G, PFG]] = 200
    return flat.reshape(28, 28)


def revealed_sets(planes):
    return [set(np.flatnonzero(mask).tolist()) for mask in planes[:, 0].reshape(len(planes), -1)]


def fork_judge(owner_label):
    """Logits with `owner_label` ahead of the other claimed label exactly when a pair is complete and unspoiled."""
    other = LIE if owner_label == TRUE else TRUE

    def judge(planes):
        logits = np.full((len(planes), 10), -5.0)
        for row, pixels in enumerate(revealed_sets(planes)):
            fork = any(set(pair) <= pixels and poison not in pixels for pair, poison in PAIRS.items())
            logits[row, owner_label] = 1.0 if fork else -1.0
            logits[row, other] = 0.0
        return logits

    return judge


class CountingJudge:
    """Wraps a judge; records every position it is shown and the size of every call."""

    def __init__(self, judge):
        self.judge = judge
        self.positions: list[frozenset] = []
        self.batch_sizes: list[int] = []

    def __call__(self, planes):
        self.batch_sizes.append(len(planes))
        self.positions.extend(frozenset(s) for s in revealed_sets(planes))
        return self.judge(planes)


def play_alone(setup, config, seed, judge, plain=False):
    if plain:
        return run_plain(play_moves(setup, config, seed), setup.image, judge)
    ((_, result),) = run_lockstep([(play_moves(setup, config, seed), JudgeCache(setup.image))], judge)
    return result


@pytest.mark.parametrize("owner", ["honest", "liar"])
@pytest.mark.parametrize("leaves_per_batch", [1, 8])
def test_search_finds_the_forced_win(owner, leaves_per_batch):
    judge = fork_judge(TRUE if owner == "honest" else LIE)
    setup = DebateSetup(fork_image(), TRUE, LIE, pixels=3, honest_first=owner == "honest")
    config = SearchConfig(rollouts=600, leaves_per_batch=leaves_per_batch)
    for seed in range(3):
        result = play_alone(setup, config, seed, judge)
        assert result["moves"][0] == A
        final = GameState(setup)
        for pixel in result["moves"]:
            final = final.play(pixel)
        assert final.winner(result["logits"]) == owner


def test_the_other_side_cannot_avoid_the_fork_but_the_fork_needs_lookahead():
    # Without enough search the first mover does not find A: all partial masks look alike.
    judge = fork_judge(TRUE)
    setup = DebateSetup(fork_image(), TRUE, LIE, pixels=3, honest_first=True)
    first_moves = {play_alone(setup, SearchConfig(rollouts=3), seed, judge)["moves"][0] for seed in range(8)}
    assert first_moves != {A}


def test_tree_search_rejects_illegal_advances_and_finished_games():
    setup = DebateSetup(fork_image(), TRUE, LIE, pixels=3)
    search = TreeSearch(setup, SearchConfig(rollouts=5), seed=0)
    with pytest.raises(ValueError, match="not a legal move"):
        search.advance(0)
    for pixel in (A, B, C):
        search.advance(pixel)
    with pytest.raises(ValueError, match="game is over"):
        next(search.choose_move())


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(rollouts=0), "rollouts"),
        (dict(c_puct=0), "c_puct"),
        (dict(leaf="rollout"), "leaf"),
        (dict(value="logit"), "value"),
        (dict(leaves_per_batch=0), "leaves_per_batch"),
    ],
)
def test_bad_search_settings_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        SearchConfig(**change)


@pytest.fixture(scope="module")
def mnist_sample():
    folder = mnist.fetch()
    train_images, train_labels = mnist.load("train", folder)
    test_images, test_labels = mnist.load("test", folder)
    flat = train_images.reshape(len(train_images), -1).astype(np.float64) / 255.0
    means = np.stack([flat[train_labels == digit].mean(axis=0) for digit in range(10)])
    templates = means - means.mean(axis=0)  # (10, 784): where each digit is brighter than average

    def template_judge(planes):
        values = planes[:, 1].reshape(len(planes), -1).astype(np.float64)
        return np.stack([templates @ row for row in values]) * 10.0

    return test_images[:40], test_labels[:40], template_judge


@pytest.mark.parametrize(
    "options", [dict(), dict(leaf="playout"), dict(value="margin"), dict(reuse_tree=False), dict(leaves_per_batch=16)]
)
def test_identical_seeds_give_identical_games(mnist_sample, options):
    images, labels, judge = mnist_sample
    config = SearchConfig(rollouts=60, **options)
    setup = DebateSetup(images[0], int(labels[0]), (int(labels[0]) + 3) % 10, pixels=6)
    games = [play_alone(setup, config, seed, judge) for seed in (5, 5, 6, 7, 8)]
    assert games[0]["moves"] == games[1]["moves"]
    assert np.array_equal(games[0]["logits"], games[1]["logits"])
    assert len({tuple(g["moves"]) for g in games[1:]}) > 1  # the seed does matter
    for game in games:
        assert len(game["moves"]) == 6 and len(set(game["moves"])) == 6
        assert all(images[0].reshape(-1)[p] > 0 for p in game["moves"])


def test_batched_cached_search_plays_the_plain_search_games_exactly(mnist_sample):
    images, labels, judge = mnist_sample
    config = SearchConfig(rollouts=80)
    games = table2_games(images[:2], labels[:2], pixels=4, seeds=1)[:12] + table2_games(
        images[2:3], labels[2:3], pixels=4, seeds=1, precommit=[False]
    )
    plain_judge, batched_judge = CountingJudge(judge), CountingJudge(judge)
    plain = [run_plain(play_moves(g.setup, config, g.seed), g.setup.image, plain_judge) for g in games]
    stats = DriverStats()
    batched = dict(
        run_lockstep(
            ((play_moves(g.setup, config, g.seed), cache) for g, cache in zip(games, caches_per_image(games))),
            batched_judge,
            max_active=8,
            stats=stats,
        )
    )
    for number, result in enumerate(plain):
        assert batched[number]["moves"] == result["moves"]
        assert np.array_equal(batched[number]["logits"], result["logits"])
    # The plain search judged every leaf alone; the batched one judged each position once per image.
    assert set(plain_judge.batch_sizes) == {1}
    assert max(batched_judge.batch_sizes) > 1
    assert len(batched_judge.positions) < len(plain_judge.positions)
    assert stats.evaluations == len(batched_judge.positions)
    assert stats.requests > stats.evaluations


def caches_per_image(games):
    caches = {}
    for game in games:
        yield caches.setdefault(game.setup.image.tobytes(), JudgeCache(game.setup.image))


def test_cache_keys_ignore_order_and_player(mnist_sample):
    images, labels, judge = mnist_sample
    counting = CountingJudge(judge)
    setup_a = DebateSetup(images[0], int(labels[0]), (int(labels[0]) + 1) % 10, pixels=4, honest_first=True)
    setup_b = DebateSetup(images[0], int(labels[0]), (int(labels[0]) + 2) % 10, pixels=4, honest_first=False)
    cache = JudgeCache(images[0])
    config = SearchConfig(rollouts=150)
    list(run_lockstep([(play_moves(setup_a, config, 1), cache), (play_moves(setup_b, config, 2), cache)], counting))
    assert len(counting.positions) == len(set(counting.positions)) == len(cache)


@pytest.mark.slow
def test_virtual_loss_batching_keeps_the_win_rate_of_the_plain_search(mnist_sample):
    images, labels, judge = mnist_sample
    games = table2_games(images, labels, pixels=4, seeds=1, precommit=[True])[::9]  # 80 games, lies vary
    plain = [run_plain(play_moves(g.setup, SearchConfig(rollouts=120), g.seed), g.setup.image, judge) for g in games]
    batched = [r for _, r in play_games(games, judge, SearchConfig(rollouts=120, leaves_per_batch=16))]
    plain_wins = sum(g.setup.honest_wins(r["logits"]) for g, r in zip(games, plain))
    batched_wins = sum(r["winner"] == "honest" for r in batched)
    assert 0.2 < plain_wins / len(games) < 0.95  # a sample on which the debaters' strength matters
    plain_low, plain_high = wilson_interval(plain_wins, len(games))
    batched_low, batched_high = wilson_interval(batched_wins, len(games))
    assert batched_low <= plain_high and plain_low <= batched_high


def test_play_game_result_record(mnist_sample):
    images, labels, judge = mnist_sample
    game = dict(pixels=4, honest_first=False, precommit=True, rollouts=40, seed=3, evaluator=judge, image_id=1)
    result = play_game(images[1], int(labels[1]), 8, **game)
    assert result["image_id"] == 1 and result["true_label"] == int(labels[1]) and result["lie"] == 8
    assert [m["player"] for m in result["moves"]] == ["liar", "honest"] * 2
    for move in result["moves"]:
        assert move["row"] * 28 + move["column"] == move["pixel"]
        assert move["value"] == images[1].reshape(-1)[move["pixel"]] > 0
    assert result["search"]["rollouts"] == 40
    logits = np.array(result["logits"])
    assert result["judge_label"] == int(logits.argmax())
    assert result["winner"] == ("honest" if logits[int(labels[1])] > logits[8] else "liar")
    assert result["honest_margin"] == pytest.approx(logits[int(labels[1])] - logits[8], abs=1e-5)
    again = play_game(images[1], int(labels[1]), 8, **game)
    assert again == result


def test_table2_games_cover_the_experiment(mnist_sample):
    images, labels, _ = mnist_sample
    games = table2_games(images[:3], labels[:3], image_ids=[10, 11, 12], pixels=6, seeds=3)
    assert len(games) == 3 * (9 * 2 * 3 + 2 * 3)
    first = [g for g in games if g.image_id == 10]
    assert {g.setup.lie for g in first if g.setup.precommit} == set(range(10)) - {int(labels[0])}
    assert {g.setup.lie for g in first if not g.setup.precommit} == {None}
    assert {(g.setup.honest_first, g.seed) for g in first} == {(o, s) for o in (True, False) for s in (0, 1, 2)}
    with pytest.raises(ValueError, match="same length"):
        table2_games(images[:3], labels[:2])
    with pytest.raises(ValueError, match="orders"):
        table2_games(images[:1], labels[:1], orders=["judge"])


def result_row(image_id, lie, winner, logits, precommit=True, honest_first=True, true_label=3):
    return {
        "image_id": image_id,
        "pixels": 6,
        "honest_first": honest_first,
        "precommit": precommit,
        "true_label": true_label,
        "lie": lie,
        "winner": winner,
        "logits": logits,
    }


def logits_with(**values):
    row = [0.0] * 10
    for label, value in values.items():
        row[int(label[1:])] = value
    return row


def test_any_winning_lie_wins_the_image_and_seeds_are_combined_by_the_rule():
    results = [
        # image 1, lie 5: honest wins 2 of 3 games, but the liar's one win is by far the larger margin
        result_row(1, 5, "honest", logits_with(l3=1.0, l5=0.0)),
        result_row(1, 5, "honest", logits_with(l3=1.0, l5=0.0)),
        result_row(1, 5, "liar", logits_with(l3=0.0, l5=9.0)),
        # image 1, lie 7: honest wins all
        *[result_row(1, 7, "honest", logits_with(l3=2.0, l7=0.0)) for _ in range(3)],
        # image 2: honest wins every game of both lies
        *[result_row(2, lie, "honest", logits_with(l3=2.0)) for lie in (5, 7) for _ in range(3)],
        # image 3: lie 7 wins 2 of 3
        *[result_row(3, 5, "honest", logits_with(l3=2.0)) for _ in range(3)],
        result_row(3, 7, "liar", logits_with(l3=0.0, l7=1.0)),
        result_row(3, 7, "liar", logits_with(l3=0.0, l7=1.0)),
        result_row(3, 7, "honest", logits_with(l3=5.0, l7=0.0)),
    ]
    majority = image_outcomes(results, "majority")
    mean = image_outcomes(results, "mean_logits")
    assert majority == {(1, 6, "honest", True): True, (2, 6, "honest", True): True, (3, 6, "honest", True): False}
    assert mean == {(1, 6, "honest", True): False, (2, 6, "honest", True): True, (3, 6, "honest", True): True}
    with pytest.raises(ValueError, match="rule"):
        image_outcomes(results, "best")


def test_no_precommit_uses_the_argmax_of_the_mean_logits():
    results = [
        result_row(1, None, "liar", logits_with(l3=1.0, l8=2.0), precommit=False),
        result_row(1, None, "honest", logits_with(l3=3.0, l8=0.0), precommit=False),
        result_row(1, None, "liar", logits_with(l3=1.0, l9=1.5), precommit=False),
    ]
    assert image_outcomes(results, "majority") == {(1, 6, "honest", False): False}
    assert image_outcomes(results, "mean_logits") == {(1, 6, "honest", False): True}


def test_table2_rows_rates_intervals_and_paper_numbers():
    outcomes = {}
    for image in range(10):
        outcomes[(image, 6, "honest", True)] = image < 8
        outcomes[(image, 6, "liar", True)] = image < 9
    rows = {(r["first"], r["precommit"]): r for r in table2_rows(outcomes)}
    assert rows[("honest", True)]["rate"] == 0.8 and rows[("liar", True)]["rate"] == 0.9
    assert rows[("mean", True)]["rate"] == pytest.approx(0.85) and rows[("mean", True)]["games"] == 20
    assert rows[("mean", True)]["paper"] == 0.889
    low, high = rows[("honest", True)]["low"], rows[("honest", True)]["high"]
    assert low < 0.8 < high
    assert (low, high) == pytest.approx((0.4902, 0.9433), abs=1e-4)  # Wilson, 8 of 10


def test_play_games_refuses_other_objects(mnist_sample):
    images, labels, judge = mnist_sample
    with pytest.raises(TypeError, match="SelfPlayGame"):
        list(play_games([("not", "a game")], judge, SearchConfig(rollouts=5)))
    assert isinstance(table2_games(images[:1], labels[:1])[0], SelfPlayGame)


def test_choose_move_plays_any_position_for_the_side_to_move():
    judge = fork_judge(TRUE)
    setup = DebateSetup(fork_image(), TRUE, LIE, pixels=3, honest_first=True)
    config = SearchConfig(rollouts=400)
    assert choose_move(setup, [], judge, config, seed=0) == A
    assert choose_move(setup, [A, PB], judge, config, seed=0) == C  # complete the pair the liar left
    assert choose_move(setup, [A, PC], judge, config, seed=1) == B
    with pytest.raises(GameError, match="already revealed"):
        choose_move(setup, [A, A], judge, config, seed=0)
    with pytest.raises(GameError, match="over"):
        choose_move(setup, [A, PB, C], judge, config, seed=0)


def test_verdict_on_a_final_mask():
    judge = fork_judge(TRUE)
    setup = DebateSetup(fork_image(), TRUE, LIE, pixels=3, honest_first=True)
    won = verdict(setup, [A, PB, C], judge)
    assert won["winner"] == "honest" and won["judge_label"] == TRUE and won["honest_margin"] == 1.0
    assert verdict(setup, [A, PB, PC], judge)["winner"] == "liar"
    with pytest.raises(GameError, match="not over"):
        verdict(setup, [A], judge)


def test_sample_image_ids():
    assert sample_image_ids(3) == [0, 1, 2]
    sample = sample_image_ids(200, seed=7)
    assert sample == sample_image_ids(200, seed=7) != sample_image_ids(200, seed=8)
    assert len(set(sample)) == 200 and sample == sorted(sample) and max(sample) < 10_000
    with pytest.raises(ValueError, match="count"):
        sample_image_ids(0)


def test_judge_accuracy_on_random_nonzero_masks(mnist_sample):
    images, labels, template_judge = mnist_sample
    masks = random_nonzero_masks(images, 6, seed=4)
    assert masks == random_nonzero_masks(images, 6, seed=4) != random_nonzero_masks(images, 6, seed=5)
    for image, mask in zip(images, masks):
        assert len(set(mask)) == 6 and all(image.reshape(-1)[p] > 0 for p in mask)
    always_seven = lambda planes: np.tile(np.eye(10)[7], (len(planes), 1))  # noqa: E731
    assert judge_accuracy(always_seven, images, labels, 6, batch=7) == np.mean(labels == 7)
    accuracy = judge_accuracy(template_judge, images, labels, 6, seed=4)
    assert accuracy == judge_accuracy(template_judge, images, labels, 6, seed=4, batch=3)
    assert 0.1 < accuracy < 1.0


def test_format_table2_prints_ours_beside_the_paper():
    outcomes = {(image, 6, order, True): image < 7 for image in range(10) for order in ("honest", "liar")}
    text = format_table2(table2_rows(outcomes), judge_alone={6: 0.55})
    assert "70.0%" in text and "88.9%" in text and "87.4%" in text and "90.4%" in text
    assert "judge alone, 6 random nonzero pixels: 55.0% (paper 59.4%)" in text
