"""The MNIST pixel debate as part of the platform: image questions, pixel protocols through the
services, what the judge may see, tree search seats played through a real Celery worker, the AI
pixel judge's verdict beside a human's, self-play stored as debates (Celery and local, resumed
after an interruption), demo data, and the stored judges' accuracy.

The judge networks here are untrained stand-ins (tests/pixel_helpers.py), except in the test of
the stored judges, which skips while their weights are not in the repository yet."""

import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from debates import pixel_debates, pixel_player, services, snapshots
from debates.models import Debate, Question, Turn
from debates.protocol import Refused
from judging import pixel_judge, pixel_selfplay, verdicts
from judging.models import Verdict
from judging.services import submit_verdict

from . import pixel_helpers
from .polling import wait_until

FIRST_TEST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # as docs/mnist-debate.md states
WAIT_SECONDS = 120  # a busy 2-core machine: be patient, never flaky


@pytest.fixture(scope="session")
def tiny_judges():
    pixel_helpers.write_tiny_judges()


pytestmark = pytest.mark.usefixtures("tiny_judges")


def wait_for(condition, what):
    return wait_until(condition, WAIT_SECONDS, what, interval=0.3)


def softmax(values):
    values = np.asarray(values, dtype=np.float64)
    weights = np.exp(values - values.max())
    return weights / weights.sum()


# ---------------------------------------------------------------------------------------------
# Questions, protocols, debates


def test_image_questions_come_from_mnist_test_images(db):
    images, labels = pixel_debates.mnist_test_set()
    assert [int(x) for x in labels[:10]] == FIRST_TEST_LABELS
    question = pixel_debates.image_question(0, lie=3)
    assert question.kind == Question.KIND_IMAGE
    assert question.answers == ["3", "7"] and question.answers[question.correct_index] == "7"
    assert np.array_equal(np.asarray(question.hidden_image, dtype=np.uint8), images[0])
    assert question.revealable_pixels() == {int(p) for p in np.flatnonzero(images[0])}
    assert "7" not in question.text + question.title + question.public_material  # the judge reads these
    assert pixel_debates.image_question(0, lie=3).pk == question.pk
    ten = pixel_debates.image_question(0, precommit=False)
    assert ten.answers == [str(d) for d in range(10)] and ten.correct_index == 7
    for bad_lie in (7, 10, -1, True, None, "3"):
        with pytest.raises(Refused) as refused:
            pixel_debates.image_question(0, lie=bad_lie)
        assert refused.value.code == "bad_lie"
    for bad_image in (10_000, -1, "0", 1.0):
        with pytest.raises(Refused):
            pixel_debates.image_question(bad_image, lie=1)
    assert Question.objects.count() == 2


def test_pixel_protocols_are_the_papers_games():
    ai = pixel_debates.ai_game_protocol(6)
    assert ai.rounds == ("sequential",) * 3 and ai.evidence == "pixels"
    assert ai.reveals_per_debater == 3 and ai.reveal_each_turn and not ai.judge_may_end
    assert pixel_debates.ai_game_protocol(4).reveals_per_debater == 2
    human = pixel_debates.human_game_protocol(rounds=5)
    assert human.rounds == ("sequential",) * 5 and human.reveals_per_debater == 1 and not human.reveal_each_turn
    for bad in (5, 0, True, "6", None):
        with pytest.raises(Refused):
            pixel_debates.ai_game_protocol(bad)
    with pytest.raises(Refused):
        pixel_debates.human_game_protocol(rounds=0)


def test_create_pixel_debate_seats_people_and_tree_search_debaters(make_user):
    alice, bob, judy = make_user("alice", "debater"), make_user("bob", "debater"), make_user("judy", "judge")
    ai = pixel_debates.create_pixel_debate("ai_vs_ai", 0, lie=3, judge=judy, rollouts=50, seed=4, move_delay=0.5)
    seats = {p.seat: p for p in ai.participants.all()}
    assert seats["A"].answer_index == ai.question.correct_index  # honest moves first by default
    assert ai.question.answers[seats["B"].answer_index] == "3"
    assert seats["A"].agent == {
        "backend": "pixel_mcts",
        "pixels": 6,
        "rollouts": 50,
        "seed": 4,
        "move_delay": 0.5,
        "leaf": "judge",
        "value": "win",
    }
    assert seats["B"].agent["seed"] == 5 and seats["judge"].user == judy
    assert ai.get_protocol().reveal_each_turn and ai.status == Debate.SCHEDULED
    liar_first = pixel_debates.create_pixel_debate("ai_vs_ai", 0, lie=3, honest_first=False, pixels=4)
    first = liar_first.participants.get(seat="A")
    assert first.answer_index != liar_first.question.correct_index and first.agent["pixels"] == 4
    against_ai = pixel_debates.create_pixel_debate(
        "human_vs_ai", 1, lie=5, humans=[alice], human_side="liar", judge=judy
    )
    mine = against_ai.participants.get(user=alice)
    assert mine.answer_index != against_ai.question.correct_index and mine.agent is None
    assert against_ai.participants.exclude(seat__in=[mine.seat, "judge"]).get().agent["backend"] == "pixel_mcts"
    people = pixel_debates.create_pixel_debate("human_vs_human", 2, lie=7, humans=[alice, bob], judge=judy, seed=3)
    sides = {p.user: p.answer_index == people.question.correct_index for p in people.participants.filter(seat__in="AB")}
    assert sorted(sides.values()) == [False, True]  # one of them must lie
    assert people.get_protocol().reveals_per_debater == 1
    count = Debate.objects.count()
    for mode, kwargs, code in [
        ("chess", {}, "bad_mode"),
        ("ai_vs_ai", {"humans": [alice]}, "bad_humans"),
        ("human_vs_ai", {}, "bad_humans"),
        ("ai_vs_ai", {"lie": None}, "bad_lie"),
        ("ai_vs_ai", {"lie": 7}, "bad_lie"),
        ("ai_vs_ai", {"pixels": 5}, "bad_pixels"),
    ]:
        with pytest.raises(Refused) as refused:
            pixel_debates.create_pixel_debate(mode, 0, **{"lie": 3, **kwargs})
        assert refused.value.code == code
    assert Debate.objects.count() == count


@pytest.fixture
def human_game(make_user):
    """alice and bob (sides drawn at random) play the human prototype on test image 0 (a 7, lie 3)."""
    alice, bob, judy = make_user("alice", "debater"), make_user("bob", "debater"), make_user("judy", "judge")
    debate = pixel_debates.create_pixel_debate(
        "human_vs_human", 0, lie=3, humans=[alice, bob], judge=judy, rounds=2, seed=0
    )
    services.start_debate(debate.pk)
    users = {p.seat: p.user for p in debate.participants.filter(seat__in=["A", "B"])}
    return debate, users, judy


def test_the_engine_refuses_black_duplicate_and_over_budget_reveals_through_the_service(human_game):
    debate, users, _ = human_game
    image = np.asarray(debate.question.hidden_image)
    nonzero = [int(p) for p in np.flatnonzero(image)]
    black = int(np.flatnonzero(image == 0)[0])

    def refused(code, user, **fields):
        before = (Turn.objects.count(), Debate.objects.get(pk=debate.pk).last_seq)
        with pytest.raises(Refused) as error:
            services.submit_action(debate.pk, user, kind="speech", **fields)
        assert error.value.code == code
        assert (Turn.objects.count(), Debate.objects.get(pk=debate.pk).last_seq) == before  # nothing changed

    refused("not_revealable", users["A"], text="Look at the corner.", reveal=black)
    refused("bad_reveal", users["A"], text="x", reveal=784)
    refused("bad_reveal", users["A"], text="x", reveal=-1)
    refused("not_your_turn", users["B"], text="x", reveal=nonzero[0])
    refused("bad_rectangles", users["A"], text="x", rectangles=[[5, 5, 2, 2]])
    turn, events = services.submit_action(
        debate.pk,
        users["A"],
        kind="speech",
        text="The top stroke is bright.",
        reveal=nonzero[0],
        rectangles=[[2, 3, 10, 20]],
    )
    shown = {"pixel": nonzero[0], "value": int(image.flat[nonzero[0]])}
    assert turn.payload == {"reveal": shown, "rectangles": [[2, 3, 10, 20]]}
    speech = next(e for e in events if e.kind == "speech")
    assert speech.data["reveal"] == shown and speech.data["rectangles"] == [[2, 3, 10, 20]]
    refused("already_revealed", users["B"], text="Again.", reveal=nonzero[0])
    services.submit_action(debate.pk, users["B"], kind="speech", text="A statement needs no pixel.")
    refused("no_reveals_left", users["A"], text="One more.", reveal=nonzero[1])  # one pixel each over the debate


def test_each_turn_of_the_ai_game_reveals_a_pixel(make_user):
    alice = make_user("alice", "debater")
    debate = pixel_debates.create_pixel_debate("human_vs_ai", 0, lie=3, humans=[alice], human_side="honest")
    services.start_debate(debate.pk)
    with pytest.raises(Refused) as refused:
        services.submit_action(debate.pk, alice, kind="speech", text="Words are not a move here.")
    assert refused.value.code == "reveal_required"
    pixel = int(np.flatnonzero(np.asarray(debate.question.hidden_image))[5])
    services.submit_action(debate.pk, alice, kind="speech", text="", reveal=pixel)
    assert pixel_debates.revealed_pixels(debate) == [pixel]


def test_the_judge_state_frames_and_page_hold_only_the_revealed_pixels(human_game, client):
    debate, users, judy = human_game
    image = np.asarray(debate.question.hidden_image)
    nonzero = [int(p) for p in np.flatnonzero(image)]
    services.submit_action(debate.pk, users["A"], kind="speech", text="Bright here.", reveal=nonzero[10])
    services.submit_action(
        debate.pk, users["B"], kind="speech", text="And here.", reveal=nonzero[-3], rectangles=[[0, 0, 5, 5]]
    )
    revealed = {(p, int(image.flat[p])) for p in (nonzero[10], nonzero[-3])}
    debate.refresh_from_db()
    viewer = snapshots.viewer_for(debate, judy)
    client.force_login(judy)
    room = client.get(f"/debates/{debate.pk}/")
    page_state = json.loads(
        room.content.decode().split('id="debate-state" type="application/json">')[1].split("</script>")[0]
    )
    judge_views = {
        "state": snapshots.state_for(debate, viewer),
        "frames": snapshots.events_after(debate, viewer, 0),
        "http state": client.get(f"/api/debates/{debate.pk}/state/").json(),
        "room page state": page_state,
    }
    for name, blob in judge_views.items():
        assert pixel_helpers.image_rows_in(blob) == [], name
        assert pixel_helpers.pixel_values_in(blob) == revealed, name
    assert "hidden" not in judge_views["state"] and "correct_answer" not in judge_views["state"]
    assert b"data-pixel-board" in room.content and b"data-board-canvas" in room.content
    # The same searches find the image in what a debater receives: they can fail.
    debater = snapshots.state_for(debate, snapshots.viewer_for(debate, users["A"]))
    assert len(pixel_helpers.image_rows_in(debater)) == 28


def test_the_room_starts_an_ai_debate_when_its_judge_opens_it(make_user, client):
    judy, alice = make_user("judy", "judge"), make_user("alice", "debater")
    waiting = pixel_debates.create_pixel_debate(
        "ai_vs_ai", 0, lie=3, judge=judy, observers=[alice], start_when_judge_opens=True
    )
    plain = pixel_debates.create_pixel_debate("ai_vs_ai", 1, lie=3, judge=alice)
    client.force_login(alice)
    client.get(f"/debates/{waiting.pk}/")  # an observer opening it does not start it
    client.get(f"/debates/{plain.pk}/")  # nor does the judge of a debate not marked so
    assert Debate.objects.get(pk=waiting.pk).status == Debate.SCHEDULED
    assert Debate.objects.get(pk=plain.pk).status == Debate.SCHEDULED
    client.force_login(judy)
    page = client.get(f"/debates/{waiting.pk}/")
    assert Debate.objects.get(pk=waiting.pk).status == Debate.LIVE
    assert b'"status": "live"' in page.content


# ---------------------------------------------------------------------------------------------
# The AI pixel judge


class Digits:
    def __init__(self, answers, correct_index):
        self.answers, self.correct_index = answers, correct_index


def test_the_pixel_judge_verdict_rule_gives_exact_ties_to_a_wrong_answer():
    logits = np.zeros(10)
    logits[[3, 7]] = 2.0
    probabilities = pixel_judge.verdict_probabilities(Digits(["3", "7"], 1), logits)
    assert probabilities == [0.5, 0.5] and verdicts.chosen_answer(probabilities, 1) == (0, True)
    assert verdicts.chosen_answer(probabilities, 0) == (1, True)
    logits[7] = 2.5
    probabilities = pixel_judge.verdict_probabilities(Digits(["3", "7"], 1), logits)
    assert verdicts.chosen_answer(probabilities, 1) == (1, False) and probabilities == pytest.approx(
        softmax([2.0, 2.5]).tolist()
    )
    assert pixel_judge.judge_pixels_for(6) == 6 and pixel_judge.judge_pixels_for(2) == 4
    assert pixel_judge.judge_pixels_for(5) == 4 and pixel_judge.judge_pixels_for(9) == 6


@pytest.mark.django_db(transaction=True)
def test_the_ai_pixel_judge_verdict_is_stored_next_to_the_human_verdict(make_user, celery_worker):
    alice, bob, judy = make_user("alice", "debater"), make_user("bob", "debater"), make_user("judy", "judge")
    debate = pixel_debates.create_pixel_debate(
        "human_vs_human", 0, lie=3, humans=[alice, bob], judge=judy, rounds=2, seed=0
    )
    services.start_debate(debate.pk)
    users = {p.seat: p.user for p in debate.participants.filter(seat__in=["A", "B"])}
    image = np.asarray(debate.question.hidden_image, dtype=np.uint8)
    nonzero = [int(p) for p in np.flatnonzero(image)]
    services.submit_action(debate.pk, users["A"], kind="speech", text="The stem.", reveal=nonzero[40])
    services.submit_action(debate.pk, users["B"], kind="speech", text="The bar.", reveal=nonzero[3])
    services.submit_action(debate.pk, users["A"], kind="speech", text="No loop anywhere.")
    services.submit_action(debate.pk, users["B"], kind="speech", text="It is a 3.")
    mask = [nonzero[40], nonzero[3]]
    ai = wait_for(lambda: Verdict.objects.filter(debate=debate, judge_kind=Verdict.AI).first(), "the AI verdict")
    assert ai.ai_judge == "pixel-judge-4px" and not ai.live and ai.judge is None  # two pixels: the 4-pixel judge
    assert ai.provenance["mask"] == mask
    assert ai.provenance["judge"]["weights_sha256"] == pixel_debates._sha256(
        str(pixel_helpers.tiny_judge_path(4).resolve()), pixel_helpers.tiny_judge_path(4).stat().st_mtime_ns
    )
    logits = pixel_helpers.tiny_logits(4, image, mask)
    expected = softmax([logits[int(a)] for a in debate.question.answers])
    assert ai.probabilities == pytest.approx(expected.tolist(), abs=1e-5)
    assert ai.chosen_index == int(np.argmax(expected)) and ai.after_turn == 4
    assert Debate.objects.get(pk=debate.pk).status == Debate.AWAITING_VERDICT  # the human judge still decides
    human, _ = submit_verdict(debate.pk, judy, [0.2, 0.8], "The revealed stem looks like a 7.")
    assert Debate.objects.get(pk=debate.pk).status == Debate.COMPLETE
    verdicts = Verdict.objects.filter(debate=debate)
    assert {v.judge_kind for v in verdicts} == {"human", "ai"} and verdicts.count() == 2
    assert human.after_turn == ai.after_turn == 4  # both judged the same final mask


# ---------------------------------------------------------------------------------------------
# Tree search seats


@pytest.mark.django_db(transaction=True)
def test_tree_search_debaters_play_an_image_debate_through_a_celery_worker(make_user, celery_worker):
    judy = make_user("judy", "judge")
    debate = pixel_debates.create_pixel_debate(
        "ai_vs_ai", 0, lie=3, pixels=4, judge=judy, rollouts=12, seed=5, move_delay=0
    )
    services.start_debate(debate.pk)
    wait_for(lambda: Debate.objects.get(pk=debate.pk).status == Debate.AWAITING_VERDICT, "the four moves")
    turns = list(debate.turns.order_by("id"))
    assert [t.seat for t in turns] == ["A", "B", "A", "B"] and all(t.kind == "speech" for t in turns)
    moves = [t.payload["reveal"]["pixel"] for t in turns]
    setup, sides = pixel_player.game_setup(debate)
    assert sides == {"A": "honest", "B": "liar"} and setup.pixels == 4 and setup.lie == 3
    evaluator = pixel_debates.judge_evaluator(4)
    for ply, (turn, pixel) in enumerate(zip(turns, moves)):
        agent = pixel_debates.PixelAgent.from_dict(debate.participants.get(seat=turn.seat).agent)
        assert pixel_player.choose_pixel(setup, moves[:ply], agent, evaluator)[0] == pixel  # seeded: replayable
        assert turn.payload["reveal"]["value"] > 0 and turn.payload["agent"]["rollouts"] == 12
    assert len(set(moves)) == 4
    wait_for(lambda: Verdict.objects.filter(debate=debate, ai_judge="pixel-judge-4px").exists(), "the AI verdict")


@pytest.mark.django_db(transaction=True)
def test_without_a_broker_the_moves_and_the_verdict_run_in_the_web_process(settings):
    settings.RUN_TASKS_IN_PROCESS = True  # the embedded default: timer threads instead of Celery
    debate = pixel_debates.create_pixel_debate("ai_vs_ai", 1, lie=8, pixels=4, rollouts=8, seed=2, move_delay=0.2)
    services.start_debate(debate.pk)
    verdict = wait_for(lambda: Verdict.objects.filter(debate_id=debate.pk).first(), "the moves and the AI verdict")
    assert verdict.ai_judge == "pixel-judge-4px" and len(verdict.provenance["mask"]) == 4
    assert Debate.objects.get(pk=debate.pk).status == Debate.COMPLETE  # no human judge: the AI verdict completes it


def test_a_missing_judge_is_a_clear_error_and_the_seat_forfeits_its_move(make_user, monkeypatch, tmp_path):
    monkeypatch.setenv("DEBATELAB_PIXEL_JUDGE_4PX", str(tmp_path / "absent.pt"))
    with pytest.raises(pixel_debates.JudgeMissing, match="absent.pt, which does not exist"):
        pixel_debates.judge_file(4)
    monkeypatch.delenv("DEBATELAB_PIXEL_JUDGE_4PX")
    monkeypatch.setattr("debates.pixel.judges.JUDGES_DIR", tmp_path)
    with pytest.raises(pixel_debates.JudgeMissing, match=r"not trained yet.*train-judge --pixels 4"):
        pixel_debates.judge_file(4)
    debate = pixel_debates.create_pixel_debate("ai_vs_ai", 0, lie=3, pixels=4, move_delay=0)
    services.start_debate(debate.pk)
    assert pixel_player.play_turn(debate.pk, "A", 0) == "failed: judge_missing"
    turn = debate.turns.get()
    assert turn.kind == "timeout" and turn.payload["agent_error"]["code"] == "judge_missing"
    assert "train-judge" in turn.payload["agent_error"]["message"]
    assert debate.engine().expected_seats() == ("B",)  # the debate goes on
    with pytest.raises(CommandError, match="not trained yet"):
        call_command("pixel_selfplay", images=1, pixels=[4], stdout=io.StringIO())


# ---------------------------------------------------------------------------------------------
# Self-play


def selfplay(**options) -> str:
    out = io.StringIO()
    call_command("pixel_selfplay", no_progress=True, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_selfplay_runs_end_to_end_through_a_celery_worker(celery_worker):
    output = selfplay(run="celery-e2e", images=2, pixels=[4], seeds=1, rollouts=6, mode="celery", judge_images=50)
    debates = Debate.objects.filter(source="pixel-selfplay").select_related("question")
    assert debates.count() == 2 * (9 * 2 + 2)  # per image: 9 lies x 2 orders with precommit, 2 orders without
    assert (
        "1 task queued (up to 4 images each)" in output
        and "Table 2, run 'celery-e2e': 4 of 4 image settings complete" in output
    )
    assert "judge alone, 4 random nonzero pixels" in output and "paper" in output
    for debate in debates:
        game = debate.provenance["pixel_selfplay"]["game"]
        assert debate.status == Debate.COMPLETE and debate.external_id.startswith("celery-e2e/")
        turns = list(debate.turns.order_by("id"))
        assert [t.payload["reveal"]["pixel"] for t in turns] == [m["pixel"] for m in game["moves"]]
        assert [t.seat for t in turns] == ["A", "B", "A", "B"]
        (verdict,) = debate.verdicts.all()
        assert verdict.ai_judge == "pixel-judge-4px" and verdict.judge_kind == "ai"
        assert verdict.correct == (game["winner"] == "honest")
        assert len(debate.question.answers) == (2 if game["precommit"] else 10)
    sample = debates.order_by("pk").first()
    mask = [m["pixel"] for m in sample.provenance["pixel_selfplay"]["game"]["moves"]]
    logits = pixel_helpers.tiny_logits(4, sample.question.hidden_image, mask)
    assert sample.provenance["pixel_selfplay"]["game"]["logits"] == pytest.approx(logits.tolist(), abs=1e-4)
    again = selfplay(run="celery-e2e", images=2, pixels=[4], seeds=1, rollouts=6, mode="celery", judge_images=0)
    assert "0 tasks queued" in again and debates.count() == 40  # idempotent


def test_selfplay_resumes_where_it_was_interrupted(db):
    settings = dict(images=1, pixels=[4], variants=["precommit"], seeds=1, rollouts=6, mode="local", judge_images=0)
    output = selfplay(run="resume", max_games=5, **settings)
    assert "stopped at --max-games: 5 of 18 games stored" in output
    first = dict(Debate.objects.filter(source="pixel-selfplay").values_list("external_id", "pk"))
    assert len(first) == 5
    output = selfplay(run="resume", **settings)
    assert "1 of 1 image settings complete, 18 games" in output
    resumed = dict(Debate.objects.filter(external_id__startswith="resume/").values_list("external_id", "pk"))
    assert len(resumed) == 18 and all(resumed[key] == pk for key, pk in first.items())
    selfplay(run="straight", **settings)
    moves = {}
    for debate in Debate.objects.filter(source="pixel-selfplay"):
        run, key = debate.external_id.split("/", 1)
        moves.setdefault(key, {})[run] = debate.provenance["pixel_selfplay"]["game"]["moves"]
    assert len(moves) == 18 and all(by_run["resume"] == by_run["straight"] for by_run in moves.values())
    with pytest.raises(CommandError, match="other search settings or another judge"):
        selfplay(run="resume", **dict(settings, rollouts=7))
    assert Debate.objects.filter(source="pixel-selfplay").count() == 36


def test_games_of_several_images_in_lockstep_play_as_they_do_one_image_at_a_time(db):
    settings = dict(images=3, pixels=[4], variants=["precommit"], seeds=1, rollouts=6, mode="local", judge_images=0)
    selfplay(run="together", images_per_task=3, **settings)
    selfplay(run="apart", images_per_task=1, **settings)
    moves = {}
    for debate in Debate.objects.filter(source="pixel-selfplay"):
        run, key = debate.external_id.split("/", 1)
        moves.setdefault(key, {})[run] = debate.provenance["pixel_selfplay"]["game"]["moves"]
    assert len(moves) == 3 * 18 and all(by_run["together"] == by_run["apart"] for by_run in moves.values())
    with pytest.raises(CommandError, match="images_per_task must be at least 1"):
        selfplay(run="apart", images_per_task=0, **settings)


def test_tasks_group_a_few_images_of_one_pixel_budget():
    units = [(image, pixels, committed) for pixels in (6, 4) for image in (7, 8, 9) for committed in (True, False)]
    assert pixel_selfplay.task_groups(units, 2) == [
        [(7, 6, True), (7, 6, False), (8, 6, True), (8, 6, False)],
        [(9, 6, True), (9, 6, False)],
        [(7, 4, True), (7, 4, False), (8, 4, True), (8, 4, False)],
        [(9, 4, True), (9, 4, False)],
    ]
    assert pixel_selfplay.task_groups(units, 100) == [units[:6], units[6:]]
    with pytest.raises(ValueError, match="one call plays one pixel budget"):
        pixel_selfplay.run_units(pixel_selfplay.SelfPlayRun(name="x", image_indices=(7,)), units)


# ---------------------------------------------------------------------------------------------
# Demo data and the stored judges


def test_the_demo_data_has_image_debates_ready_to_judge(db):
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())  # idempotent
    image_debates = Debate.objects.filter(question__kind="image")
    assert image_debates.count() == 2
    ai = image_debates.get(participants__agent__backend="pixel_mcts", participants__seat="A")
    assert ai.participants.get(seat="judge").user.username == "judy" and ai.status == Debate.SCHEDULED
    assert ai.provenance["pixel_debate"]["start_when_judge_opens"]
    people = image_debates.exclude(pk=ai.pk).get()
    assert {p.user.username for p in people.participants.filter(seat__in=["A", "B"])} == {"alice", "bob"}
    assert people.status == Debate.LIVE and people.participants.get(seat="judge").user.username == "jules"


@pytest.mark.slow
@pytest.mark.parametrize("pixels", [6, 4])
def test_the_stored_judges_accuracy_on_a_fixed_sample(pixels):
    from debates.pixel.judge_net import accuracy_on_random_masks
    from debates.pixel.judges import load_judge, metadata_path, weights_path

    if not weights_path(pixels).exists():
        pytest.skip(
            f"{weights_path(pixels)} is not in the repository yet: the {pixels}-pixel judge is still "
            f"training (python -m debates.pixel train-judge --pixels {pixels})"
        )
    recorded = json.loads(metadata_path(pixels).read_text()).get("test_accuracy_random_nonzero_masks")
    assert recorded, f"{metadata_path(pixels)} has no recorded accuracy: run python -m debates.pixel evaluate-judge"
    images, labels = pixel_debates.mnist_test_set()
    sample = 2000  # the first 2000 test images, mask seed 0: a binomial standard error of about 1.1 points
    accuracy = accuracy_on_random_masks(load_judge(pixels), images[:sample], labels[:sample], pixels, seed=0)
    assert accuracy == pytest.approx(recorded["accuracy_mean"], abs=0.035)
