"""Headless Chromium on image debates, against a real daphne server and a real Celery worker.

1. A judge opens an AI-vs-AI pixel debate: it starts, the tree search debaters' reveals arrive
   one by one, and everything the judge's page holds (the state it was served, every websocket
   frame, the board's pixels, the DOM) contains exactly the revealed pixels and nothing else of
   the image. The judge gives a verdict; the AI pixel judge's verdict on the same mask is stored
   beside it.
2. Two people play the human game: one reveals a pixel with the keyboard only (arrow keys, Enter),
   the other draws a rectangle claim with the mouse; the judge sees both as they happen.

The database is touched only before and after the browsers run (Playwright's sync API keeps an
event loop running in this thread), or from a helper thread. Screenshots go to test-artifacts/."""

import concurrent.futures
import json
import re

import numpy as np
import pytest

from . import pixel_helpers
from . import test_browser as browser_helpers
from .conftest import ARTIFACTS
from .polling import wait_until
from .test_browser import PAGE_ERRORS, chromium_path  # noqa: F401 (chromium_path is a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BOARD_VIEWPORT = {"width": 1280, "height": 1000}  # the whole board and the verdict form
WAIT_MS = 60_000  # tree search on a busy 2-core machine: be patient, never flaky
UNKNOWN_RGB = [43, 49, 64]  # static/js/pixel-board.js: a pixel the judge has not seen


@pytest.fixture(scope="session")
def tiny_judges():
    pixel_helpers.write_tiny_judges()


@pytest.fixture(autouse=True)
def no_page_errors():
    PAGE_ERRORS.clear()
    yield
    assert PAGE_ERRORS == [], PAGE_ERRORS


def chromium():
    return browser_helpers.chromium(WAIT_MS)


def sign_in(browser, base_url, username):
    return browser_helpers.sign_in(browser, base_url, username, viewport=BOARD_VIEWPORT, wait_ms=WAIT_MS)


def record_frames(page) -> list[str]:
    frames = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))
    return frames


def open_room(page, base_url, debate_id):
    from playwright.sync_api import expect

    page.goto(f"{base_url}/debates/{debate_id}/")
    expect(page.locator("[data-conn]")).to_have_text("Connected")


def in_thread(function, *args):
    """Database work while Playwright's event loop runs in this thread."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(_closing_connections, function, *args).result()


def _closing_connections(function, *args):
    from django.db import connection

    try:
        return function(*args)
    finally:
        connection.close()


def shoot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def board_cells(page) -> list[list[int]]:
    """The colour at the centre of each of the board's 28x28 cells, as drawn on its canvas."""
    return page.evaluate("""() => {
        const canvas = document.querySelector('[data-board-canvas]');
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        const cell = canvas.width / 28, cells = [];
        for (let p = 0; p < 784; p++) {
            const x = Math.floor((p % 28) * cell + cell / 2), y = Math.floor(Math.floor(p / 28) * cell + cell / 2);
            const i = (y * canvas.width + x) * 4;
            cells.push([data[i], data[i + 1], data[i + 2]]);
        }
        return cells;
    }""")


def seen_on_board(page) -> dict[int, int]:
    """{pixel: grey} for every cell of the board that is not the judge's 'unknown'."""
    seen = {}
    for pixel, rgb in enumerate(board_cells(page)):
        if rgb != UNKNOWN_RGB:
            assert rgb[0] == rgb[1] == rgb[2], (pixel, rgb)  # anything shown is a grey level
            seen[pixel] = rgb[0]
    return seen


def test_a_judge_watches_tree_search_debaters_and_sees_only_the_revealed_pixels(
    chromium_path, tiny_judges, daphne_server, celery_worker, make_user
):
    from playwright.sync_api import expect

    from debates import pixel_debates
    from debates.models import Debate
    from judging.models import Verdict

    judy, researcher = make_user("judy", "judge"), make_user("rita", "researcher")
    debate = pixel_debates.create_pixel_debate(
        "ai_vs_ai",
        0,
        lie=3,
        pixels=6,
        judge=judy,
        observers=[researcher],
        rollouts=10,
        seed=3,
        move_delay=1.5,
        start_when_judge_opens=True,
    )
    image = np.asarray(debate.question.hidden_image)
    debate_id = debate.pk

    with chromium() as browser:
        judge = sign_in(browser, daphne_server, "judy")
        frames = record_frames(judge)
        open_room(judge, daphne_server, debate_id)  # the debate starts as its judge arrives
        served = json.loads(judge.evaluate("document.getElementById('debate-state').textContent"))
        assert served["status"] == "live" and "hidden" not in served and pixel_helpers.image_rows_in(served) == []
        expect(judge.locator("[data-board-claims]")).to_have_text("Debater A claims 7 · Debater B claims 3")
        evidence = judge.locator("[data-board-evidence] li")
        counts = []
        for reveals in range(1, 7):  # each reveal appears as it happens, without a reload
            expect(evidence.nth(reveals - 1)).to_be_attached()
            counts.append(evidence.count())
            if reveals == 3:
                shoot(judge, "pixel-room-judge-live.png")
        assert counts[0] < 6, counts  # the first reveal was on the judge's screen before the last was made
        expect(judge.get_by_role("link", name="Give your verdict")).to_be_visible()
        listed = {
            int(item.get_attribute("data-pixel")): int(item.get_attribute("data-value")) for item in evidence.all()
        }
        on_board = seen_on_board(judge)
        html = judge.content()
        shoot(judge, "pixel-room-judge-final.png")

        observer = sign_in(browser, daphne_server, "rita")  # an observer sees the digit itself
        open_room(observer, daphne_server, debate_id)
        observed = board_cells(observer)
        shoot(observer, "pixel-room-observer.png")

        judge.get_by_role("link", name="Give your verdict").click()
        expect(judge).to_have_url(re.compile(rf"/debates/{debate_id}/verdict/$"))
        expect(judge.locator("[data-revealed-board] rect")).to_have_count(1 + 6)  # the blank board and the reveals
        judge.get_by_label("Your reason").fill("The revealed pixels trace a diagonal stem, as in a 7.")
        judge.locator("#p1").focus()
        for _ in range(3):
            judge.keyboard.press("PageUp")
        shoot(judge, "pixel-verdict-form.png")
        judge.get_by_role("button", name="Submit verdict").click()
        expect(judge.get_by_role("heading", name="Thank you: your verdict is recorded")).to_be_visible()

    turns = list(Debate.objects.get(pk=debate_id).turns.order_by("id"))
    revealed = {t.payload["reveal"]["pixel"]: t.payload["reveal"]["value"] for t in turns}
    assert len(revealed) == 6 and all(int(image.flat[p]) == v > 0 for p, v in revealed.items())
    assert listed == revealed and on_board == revealed  # the board shows exactly the revealed pixels
    received = [json.loads(frame) for frame in frames]
    assert pixel_helpers.image_rows_in(received) == [] and pixel_helpers.pixel_values_in(received) == set(
        revealed.items()
    )
    assert len({frame["seq"] for frame in received if frame.get("kind") == "speech"}) == 6  # one frame per reveal
    grey_rows = re.findall(r"\[(?:\s*\d+\s*,){27}\s*\d+\s*\]", html)
    assert grey_rows == []  # no image row anywhere in the judge's page
    assert sum(1 for rgb in observed if rgb[0] > 0 and rgb[0] == rgb[1] == rgb[2]) >= int((image > 0).sum())
    verdicts = Verdict.objects.filter(debate_id=debate_id)
    assert verdicts.get(judge_kind="human").judge.username == "judy"
    ai = wait_until(lambda: verdicts.filter(judge_kind="ai").first(), 60, "the AI judge's verdict")
    assert ai.ai_judge == "pixel-judge-6px" and sorted(ai.provenance["mask"]) == sorted(revealed)


def test_people_reveal_with_the_keyboard_and_claim_with_rectangles_while_the_judge_watches(
    chromium_path, tiny_judges, daphne_server, make_user
):
    from playwright.sync_api import expect

    from debates import pixel_debates, services
    from debates.models import Debate

    alice, bob, judy = make_user("alice", "debater"), make_user("bob", "debater"), make_user("judy", "judge")
    debate = pixel_debates.create_pixel_debate(
        "human_vs_human", 0, lie=3, humans=[alice, bob], judge=judy, rounds=2, seed=0
    )
    services.start_debate(debate.pk)
    first, second = (debate.participants.get(seat=s).user.username for s in ("A", "B"))
    image = np.asarray(debate.question.hidden_image)
    target = (int(np.flatnonzero(image)[20]) // 28, int(np.flatnonzero(image)[20]) % 28)
    debate_id = debate.pk

    with chromium() as browser:
        judge = sign_in(browser, daphne_server, "judy")
        frames = record_frames(judge)
        open_room(judge, daphne_server, debate_id)
        opener = sign_in(browser, daphne_server, first)
        open_room(opener, daphne_server, debate_id)
        replier = sign_in(browser, daphne_server, second)
        open_room(replier, daphne_server, debate_id)

        # Keyboard only: write the statement, move the board's cursor with the arrow keys, Enter reveals.
        opener.get_by_label(re.compile("Speech for answer")).fill("The top bar is bright: a 7.")
        opener.locator("[data-board-canvas]").focus()
        row, column = 14, 14
        while (row, column) != target:
            key = (
                ("ArrowDown" if target[0] > row else "ArrowUp")
                if row != target[0]
                else ("ArrowRight" if target[1] > column else "ArrowLeft")
            )
            opener.keyboard.press(key)
            row += {"ArrowDown": 1, "ArrowUp": -1}.get(key, 0)
            column += {"ArrowRight": 1, "ArrowLeft": -1}.get(key, 0)
        expect(opener.locator("[data-board-status]")).to_contain_text(f"Row {target[0] + 1}, column {target[1] + 1}")
        opener.keyboard.press("Enter")
        expect(judge.locator("[data-board-evidence] li")).to_have_count(1)
        expect(judge.locator("[data-transcript]")).to_contain_text("The top bar is bright: a 7.")
        expect(opener.locator("[data-board-budget]")).to_have_text(
            "You may reveal 0 more pixels in this debate (of 1)."
        )

        # The mouse: a rectangle claim (two corners) with a statement sent from the composer.
        replier.get_by_role("button", name="Draw a rectangle").click()
        canvas = replier.locator("[data-board-canvas]")
        box = canvas.bounding_box()
        cell = box["width"] / 28
        canvas.click(position={"x": 4.5 * cell, "y": 3.5 * cell})
        canvas.click(position={"x": 9.5 * cell, "y": 8.5 * cell})
        expect(replier.locator("[data-board-pending] li")).to_have_count(1)
        replier.get_by_label(re.compile("Speech for answer")).fill("The loop of a 3 is in this box.")
        replier.get_by_role("button", name="Send speech").click()
        expect(judge.locator("[data-transcript]")).to_contain_text("The loop of a 3 is in this box.")
        expect(replier.locator("[data-board-pending] li")).to_have_count(0)
        on_board = seen_on_board(judge)
        shoot(judge, "pixel-human-game-judge.png")
        shoot(opener, "pixel-human-game-debater.png")

    turns = list(Debate.objects.get(pk=debate_id).turns.order_by("id"))
    pixel = target[0] * 28 + target[1]
    assert turns[0].payload["reveal"] == {"pixel": pixel, "value": int(image.flat[pixel])}
    assert turns[0].text == "The top bar is bright: a 7."
    assert turns[1].payload == {"rectangles": [[3, 4, 8, 9]]} and turns[1].seat == "B"
    assert on_board == {pixel: int(image.flat[pixel])}
    received = [json.loads(frame) for frame in frames]
    assert pixel_helpers.image_rows_in(received) == [] and pixel_helpers.pixel_values_in(received) == {
        (pixel, int(image.flat[pixel]))
    }
    assert any(frame.get("data", {}).get("rectangles") == [[3, 4, 8, 9]] for frame in received)


def test_a_person_plays_the_ai_game_against_a_tree_search_debater(
    chromium_path, tiny_judges, daphne_server, celery_worker, make_user
):
    from playwright.sync_api import expect

    from debates import pixel_debates, services
    from debates.models import Debate

    alice = make_user("alice", "debater")
    debate = pixel_debates.create_pixel_debate(
        "human_vs_ai", 7, lie=4, pixels=4, humans=[alice], human_side="honest", rollouts=10, seed=1, move_delay=0.5
    )
    services.start_debate(debate.pk)
    image = np.asarray(debate.question.hidden_image)
    bright = [int(p) for p in np.flatnonzero(image >= 200)]
    debate_id = debate.pk

    with chromium() as browser:
        page = sign_in(browser, daphne_server, "alice")
        open_room(page, daphne_server, debate_id)
        canvas = page.locator("[data-board-canvas]")
        box = canvas.bounding_box()
        cell = box["width"] / 28
        evidence = page.locator("[data-board-evidence] li")
        for turn in range(2):
            expect(page.get_by_role("button", name=re.compile("^Reveal row"))).to_be_visible()
            pixel = next(p for p in bright if str(p) not in [e.get_attribute("data-pixel") for e in evidence.all()])
            canvas.click(position={"x": (pixel % 28 + 0.5) * cell, "y": (pixel // 28 + 0.5) * cell})
            page.get_by_role("button", name=f"Reveal row {pixel // 28 + 1}, column {pixel % 28 + 1}").click()
            expect(evidence).to_have_count(2 * turn + 2)  # mine, then the tree search debater's answer
        expect(page.locator("[data-board-budget]")).to_be_hidden()  # the debate is over
        shoot(page, "pixel-human-vs-ai.png")

    turns = list(Debate.objects.get(pk=debate_id).turns.order_by("id"))
    assert [t.seat for t in turns] == ["A", "B", "A", "B"] and all(t.payload.get("reveal") for t in turns)
    assert turns[0].author.username == "alice" and turns[1].payload["agent"]["rollouts"] == 10
    pixel = turns[0].payload["reveal"]["pixel"]
    assert turns[0].text == f"I reveal the pixel at row {pixel // 28 + 1}, column {pixel % 28 + 1}."
