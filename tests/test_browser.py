"""Headless Chromium against a real daphne server: two debaters and a judge play a whole debate in
three browser contexts, a researcher starts and observes it, and the judge's verdict lands in the
database. Screenshots of every view go to test-artifacts/.

The database is only touched before and after the browsers run: Playwright's sync API keeps an
event loop running, and Django refuses database calls while one runs in the same thread."""

import contextlib
import json
import os
import re

import pytest

from .conftest import ARTIFACTS
from .polling import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]  # daphne must see the data

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "pass-for-tests-1"  # tests/conftest.py make_user
SECRET = "SECRET PASSAGE"
PRIVATE_NOTE = "note-to-self-7f3a: mention the fire"
WAIT_MS = 30_000  # this machine is small and busy: be patient, never flaky
PHONE = {"width": 390, "height": 844}
TAMPER_ME = "this frame is made too long on its way to the server"
PAGE_ERRORS = []  # uncaught script errors in any page: each test fails on them
SCREENSHOTS = (
    "room-debater.png",
    "room-observer.png",
    "room-judge.png",
    "room-judge-phone.png",
    "room-judge-feedback.png",
    "verdict-form.png",
    "verdict-form-phone.png",
    "verdict-recorded.png",
    "lobby-judge.png",
    "lobby-researcher.png",
)


@pytest.fixture
def chromium_path():
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is missing (make test installs Debian's chromium where it can)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@contextlib.contextmanager
def chromium(wait_ms=WAIT_MS):
    """Opened inside a test, after its database set-up, and closed before its database checks."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=wait_ms)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def watch_errors(page, who):
    """Uncaught script errors and Content-Security-Policy violations (the policy blocks what a
    page loads against it and says so on the console) go to PAGE_ERRORS, which fails the test."""
    page.on("pageerror", lambda error: PAGE_ERRORS.append(f"{who}: {error}"))
    page.on(
        "console",
        lambda message: (
            PAGE_ERRORS.append(f"{who}: {message.text}") if "Content Security Policy" in message.text else None
        ),
    )


def sign_in(browser, base_url, username, viewport=None, wait_ms=WAIT_MS):
    """A fresh browser context signed in through the login page; returns its page."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
    context.set_default_timeout(wait_ms)
    page = context.new_page()
    watch_errors(page, username)
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base_url}/")
    expect(page.get_by_role("heading", name="My debates")).to_be_visible()
    return page


def open_room(page, debate_id):
    """From the lobby, through the debate's call to action, into the room with a live connection."""
    from playwright.sync_api import expect

    page.locator(f'a[href="/debates/{debate_id}/"]').first.click()
    expect(page).to_have_url(re.compile(rf"/debates/{debate_id}/$"))
    expect(page.locator("[data-conn]")).to_have_text("Connected")


def record_frames(page):
    """Every websocket frame the page receives, as text."""
    frames = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))
    return frames


def assert_fits_a_phone(page):
    """One column, nothing wider than the screen."""
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    columns = page.evaluate("""() => Array.from(document.querySelectorAll('.room-grid, .verdict-layout'),
        (grid) => getComputedStyle(grid).gridTemplateColumns.split(' ').length)""")
    assert columns and set(columns) == {1}, columns


def shoot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_two_debaters_and_a_judge_complete_a_debate(chromium_path, daphne_server, make_user, two_round_debate):
    debate = two_round_debate  # alice: A (correct answer), bob: B, judy: judge; simultaneous, feedback, sequential
    researcher = make_user("rita", "researcher")
    researcher.is_staff = True
    researcher.save()
    debate.created_by = researcher  # rita runs this debate: it is in her space
    debate.save(update_fields=["created_by"])
    answers = [debate.question.answers[i] for i in debate.shown_answer_order()]

    with chromium() as browser:
        judge_html, judge_frames_text = play_whole_debate(browser, daphne_server, debate.pk)

    from debates import services
    from judging.models import Verdict

    verdict = Verdict.objects.get(debate=debate)
    assert verdict.judge.username == "judy"
    assert services.to_display(debate, verdict.probabilities) == pytest.approx([0.75, 0.25])
    assert verdict.reason == "Alice quoted the story; Bob only offered a reading."
    assert verdict.seconds_spent is not None and verdict.seconds_spent > 0
    debate.refresh_from_db()
    assert debate.status == "complete"
    assert list(debate.turns.values_list("seat", "kind")) == [
        ("A", "speech"),
        ("B", "speech"),
        ("judge", "feedback"),
        ("A", "speech"),
        ("B", "speech"),
    ]
    assert debate.turns.get(seat="A", round_index=0).private_note == PRIVATE_NOTE
    # The judge's browser never received hidden material, private notes or who is honest.
    assert "speeches_revealed" in judge_frames_text and answers[0] in judge_html  # the capture worked
    assert "speech_sealed" not in judge_frames_text  # nor who handed in a simultaneous speech first
    for secret in (SECRET, PRIVATE_NOTE, "correct_answer", "honest_seats"):
        assert secret not in judge_frames_text
        assert secret not in judge_html
    for name in SCREENSHOTS:
        assert (ARTIFACTS / name).stat().st_size > 10_000, name


def play_whole_debate(browser, url, debate_id):
    """Everything the four people do in their browsers; returns what the judge's browser got."""
    from playwright.sync_api import expect

    alice = sign_in(browser, url, "alice")
    bob = sign_in(browser, url, "bob")
    judy = sign_in(browser, url, "judy")
    rita = sign_in(browser, url, "rita")
    judge_frames = record_frames(judy)
    for page in (alice, bob, judy, rita):
        open_room(page, debate_id)
    expect(alice.locator("[data-headline]")).to_have_text("Not started yet")

    # Presence: everybody's dot is green once all four are connected.
    expect(judy.locator(".seat .dot.online")).to_have_count(3)

    # The researcher starts the debate; the others see it go live without reloading.
    rita.get_by_role("button", name="Start the debate").click()
    expect(rita.locator("[data-status]")).to_have_text("Live")
    expect(alice.locator("[data-headline]")).to_have_text("Your turn")
    expect(bob.locator("[data-headline]")).to_have_text("Your turn")
    expect(judy.locator("[data-headline]")).to_have_text("Waiting for Debater A and Debater B")
    expect(rita.get_by_role("button", name="Start the debate")).to_be_hidden()
    expect(alice.locator("#passage")).to_contain_text(SECRET)  # debaters read the passage beside the transcript

    # Round 1, simultaneous: Alice's speech stays sealed until Bob's is in.
    alice.get_by_label("Speech for answer").fill("The story says the fire had to be vented: that is why.")
    alice.get_by_label("Private note").fill(PRIVATE_NOTE)
    alice.get_by_role("button", name="Send speech").click()
    expect(alice.locator(".turn.seat-A .text")).to_have_text("The story says the fire had to be vented: that is why.")
    expect(alice.locator(".turn.seat-A .private")).to_contain_text(PRIVATE_NOTE)
    expect(alice.get_by_label("Speech for answer")).to_have_value("")
    expect(bob.locator(".turn.sealed")).to_have_text(
        re.compile("Debater A has submitted \\(sealed until both are in\\)")
    )
    # The judge is not told who handed in first (debates/snapshots.py): still waiting for both, nothing shown.
    expect(judy.locator("[data-headline]")).to_have_text("Waiting for Debater A and Debater B")
    expect(judy.locator(".turn")).to_have_count(0)

    bob_speech = "The captain wanted off the ship; the airlock was his way out."
    bob.get_by_label("Speech for answer").fill(bob_speech)
    expect(bob.locator("[data-counter]")).to_have_text(f"{len(bob_speech)} / 500")
    bob.get_by_role("button", name="Send speech").click()
    expect(judy.locator(".turn.seat-A .text")).to_have_text("The story says the fire had to be vented: that is why.")
    expect(judy.locator(".turn.seat-B .text")).to_contain_text("the airlock was his way out")
    expect(judy.locator(".turn.sealed")).to_have_count(0)

    # Round 2: judge feedback with sliders operated by the keyboard.
    expect(judy.locator("[data-headline]")).to_have_text("Your turn")
    first = judy.locator("#feedback-p0")
    first.focus()
    for _ in range(10):
        first.press("ArrowRight")
    expect(judy.locator("output[for=feedback-p0]")).to_have_text("60%")
    expect(judy.locator("output[for=feedback-p1]")).to_have_text("40%")
    judy.get_by_label("Comment for the debaters").fill("Which line of the story says so?")
    shoot(judy, "room-judge-feedback.png")
    judy.get_by_role("button", name="Send feedback").click()
    expect(alice.locator(".turn.seat-judge")).to_contain_text("Which line of the story says so?")
    expect(alice.locator(".turn.seat-judge .bar .value").first).to_have_text("60%")
    expect(alice.locator("[data-headline]")).to_have_text("Your turn")
    expect(bob.locator("[data-headline]")).to_have_text("Waiting for Debater A")

    # Round 3, sequential. Alice uses only the keyboard: Tab to the composer, type, Tab to Send, Enter.
    alice.locator("body").click(position={"x": 5, "y": 5})
    alice.evaluate("document.activeElement && document.activeElement.blur()")
    for _ in range(40):
        alice.keyboard.press("Tab")
        if alice.evaluate("document.activeElement.id") == "speech-text":
            break
    else:
        pytest.fail("Tab never reached the speech composer")
    alice.keyboard.type("Line three: 'vent the fire'. Bob has no line to quote.")
    alice.keyboard.press("Tab")
    assert alice.evaluate("document.activeElement.id") == "speech-note"
    alice.keyboard.press("Tab")
    assert alice.evaluate("document.activeElement.textContent.trim()") == "Send speech"
    alice.keyboard.press("Enter")
    expect(bob.locator(".turn.seat-A .text").last).to_have_text(
        "Line three: 'vent the fire'. Bob has no line to quote."
    )
    expect(bob.locator("[data-headline]")).to_have_text("Your turn")
    expect(judy.locator("[data-headline]")).to_have_text("Waiting for Debater B")

    shoot(alice, "room-debater.png")
    shoot(rita, "room-observer.png")
    judy.set_viewport_size(PHONE)
    assert_fits_a_phone(judy)
    shoot(judy, "room-judge-phone.png")
    judy.set_viewport_size({"width": 1280, "height": 900})

    bob.get_by_label("Speech for answer").fill("Escaping is the simplest reading.")
    bob.keyboard.press("Control+Enter")

    # The debate ends: the judge gets a prominent link to the verdict form.
    verdict_link = judy.get_by_role("link", name="Give your verdict")
    expect(verdict_link).to_be_visible()
    expect(alice.locator("[data-detail]")).to_have_text("Waiting for the judge's verdict.")
    shoot(judy, "room-judge.png")
    lobby = judy.context.new_page()
    lobby.goto(f"{url}/")
    expect(lobby.get_by_role("link", name="Give verdict")).to_be_visible()
    shoot(lobby, "lobby-judge.png")
    lobby.close()
    verdict_link.click()
    expect(judy).to_have_url(re.compile(rf"/debates/{debate_id}/verdict/$"))
    # On the verdict page the judge is still present in the debate (a study's judge timeout spares them).
    from debates import presence

    wait_until(lambda: "judge" in presence.online_seats(debate_id), message="the verdict page to count as present")

    # The form starts from the judge's last report (60/40), with no error before anything is touched.
    expect(judy.locator("output[for=p0]")).to_have_text("60%")
    expect(judy.locator("output[for=p1]")).to_have_text("40%")
    expect(judy.locator("[data-lean]")).to_contain_text("You lean towards 1.")
    expect(judy.locator("[data-verdict-error]")).to_have_text("")
    # A 50/50 verdict is refused before it leaves the page.
    judy.locator("#p0").focus()
    for _ in range(10):
        judy.keyboard.press("ArrowLeft")
    expect(judy.locator("[data-lean]")).to_contain_text("Undecided")
    judy.get_by_label("Your reason").fill("Alice quoted the story; Bob only offered a reading.")
    judy.get_by_role("button", name="Submit verdict").click()
    expect(judy.locator("[data-verdict-error]")).to_contain_text("must favour one answer")
    expect(judy).to_have_url(re.compile(r"/verdict/$"))

    # Keyboard on the sliders: the other slider follows so the total stays 100%.
    judy.locator("#p0").focus()
    for _ in range(5):
        judy.keyboard.press("PageUp")  # +10% each
    judy.keyboard.press("ArrowLeft")
    expect(judy.locator("output[for=p0]")).to_have_text("99%")
    expect(judy.locator("output[for=p1]")).to_have_text("1%")
    for _ in range(24):
        judy.keyboard.press("ArrowLeft")
    expect(judy.locator("output[for=p0]")).to_have_text("75%")
    expect(judy.locator("output[for=p1]")).to_have_text("25%")
    expect(judy.locator("[data-lean]")).to_contain_text("You lean towards 1.")
    judy.set_viewport_size(PHONE)
    assert_fits_a_phone(judy)
    shoot(judy, "verdict-form-phone.png")
    judy.set_viewport_size({"width": 1280, "height": 900})
    shoot(judy, "verdict-form.png")
    judy.get_by_role("button", name="Submit verdict").click()
    expect(judy.get_by_role("heading", name="Thank you: your verdict is recorded")).to_be_visible()
    expect(judy.locator("[data-recorded]")).to_contain_text("75%")
    expect(judy.locator("[data-recorded]")).to_contain_text("Alice quoted the story")
    shoot(judy, "verdict-recorded.png")
    expect(alice.locator("[data-status]")).to_have_text("Complete")
    rita.goto(f"{url}/")
    expect(rita.get_by_role("heading", name="Recent debates")).to_be_visible()
    shoot(rita, "lobby-researcher.png")

    judge_html = judy.content() + judy.goto(f"{url}/debates/{debate_id}/").text()
    for page in (alice, bob, judy, rita):
        page.context.close()
    assert not PAGE_ERRORS
    return judge_html, "\n".join(judge_frames)


def test_client_recovers_from_lost_acks_and_missed_events(chromium_path, daphne_server, make_user, question):
    """Through a websocket proxy in the page: an ack is lost with the connection (the speech is
    re-sent with the same client_id and stored once), an event frame is dropped (the client asks
    for a sync and shows it anyway), and a refused action shows the server's reason."""
    from debates import services
    from debates.protocol import Protocol

    alice, bob = make_user("alice", "debater"), make_user("bob", "debater")
    protocol = Protocol(rounds=("sequential", "sequential"), char_limit=300, turn_seconds=900)
    debate = services.create_debate(question, protocol, {"A": (alice, 0), "B": (bob, 1)}, seed=1)
    services.start_debate(debate.pk)
    sent, connections = [], []

    def proxy(route):
        """Forwards frames both ways. Connection 1 loses the ack of the first speech and closes;
        connection 2 drops the first event about Debater B's speech."""
        number = len(connections) + 1
        connections.append(number)
        server = route.connect_to_server()
        dropped = {"speech": False, "closed": False}

        def from_page(message):
            frame = json.loads(message)
            sent.append(frame)
            if frame.get("type") == "speech" and frame.get("text") == TAMPER_ME:
                frame["text"] = "x" * 301  # over the limit: the server must refuse it with a reason
                message = json.dumps(frame)
            server.send(message)

        def from_server(message):
            frame = json.loads(message)
            if dropped["closed"]:
                return
            if number == 1 and frame.get("type") == "ack":
                dropped["closed"] = True
                route.close(code=4000, reason="simulated network loss")
                server.close()
                return
            if (
                number == 2
                and frame.get("kind") == "speech"
                and frame["data"].get("seat") == "B"
                and not dropped["speech"]
            ):
                dropped["speech"] = True
                return
            route.send(message)

        route.on_message(from_page)
        server.on_message(from_server)

    with chromium() as browser:
        from playwright.sync_api import expect

        alice_page = sign_in(browser, daphne_server, "alice")
        alice_page.route_web_socket(re.compile(r".*/ws/debates/\d+/$"), proxy)
        open_room(alice_page, debate.pk)
        bob_page = sign_in(browser, daphne_server, "bob")
        open_room(bob_page, debate.pk)

        alice_page.get_by_label("Speech for answer").fill("Sent once, acknowledged on the second try.")
        alice_page.get_by_role("button", name="Send speech").click()
        expect(alice_page.locator("[data-conn]")).to_have_text("Connected")
        expect(alice_page.get_by_label("Speech for answer")).to_have_value("")  # acknowledged at last
        expect(alice_page.locator(".turn.seat-A")).to_have_count(1)
        expect(bob_page.locator(".turn.seat-A")).to_have_count(1)

        bob_page.get_by_label("Speech for answer").fill("Bob's reply, whose event Alice's proxy drops.")
        bob_page.get_by_role("button", name="Send speech").click()
        expect(alice_page.locator(".turn.seat-B .text")).to_have_text("Bob's reply, whose event Alice's proxy drops.")
        expect(alice_page.locator("[data-headline]")).to_have_text("Your turn")
        expect(alice_page.locator("[data-countdown]")).to_have_text(re.compile(r"^1[45]:\d\d left$"))

        # An error frame from the server shows next to the composer; the draft is kept for a retry.
        composer = alice_page.get_by_label("Speech for answer")
        composer.fill(TAMPER_ME)
        alice_page.get_by_role("button", name="Send speech").click()
        expect(alice_page.locator("[data-error]")).to_contain_text("at most 300 characters")
        expect(composer).to_have_value(TAMPER_ME)
        composer.fill("A second speech, within the limit.")
        alice_page.get_by_role("button", name="Send speech").click()
        expect(composer).to_have_value("")
        expect(alice_page.locator("[data-error]")).to_be_empty()
        expect(bob_page.locator(".turn.seat-A")).to_have_count(2)
        alice_page.context.close()
        bob_page.context.close()

    assert not PAGE_ERRORS
    speeches = [m for m in sent if m.get("type") == "speech"]
    assert len(speeches) == 4 and speeches[0]["client_id"] == speeches[1]["client_id"]
    assert len({m["client_id"] for m in speeches}) == 3
    assert any(m.get("type") == "sync" for m in sent), sent
    assert len(connections) >= 2
    assert list(debate.turns.filter(seat="A").values_list("text", flat=True)) == [
        "Sent once, acknowledged on the second try.",
        "A second speech, within the limit.",
    ]
    assert debate.turns.filter(seat="B").count() == 1


@pytest.fixture(scope="module", autouse=True)
def clean_artifacts():
    """Screenshots from an earlier run never pass for this run's."""
    for name in SCREENSHOTS:
        (ARTIFACTS / name).unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def fresh_page_errors():
    PAGE_ERRORS.clear()
