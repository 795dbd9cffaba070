"""Headless Chromium against a real daphne server: a Prolific participant follows the study link to
the completion redirect (consent, quiz, practice, the debate room with its tab-title notice, the
verdict, the answer and score, the survey), once at desktop width and once at phone width; a waiting
room that moves on the moment a seat frees up (told on the person's own websocket). The
redirect to app.prolific.com is caught in the browser (nothing leaves this machine). The analysis
page's number tables fit at 1280 px. Screenshots go to test-artifacts/."""

import re

import pytest

from tests.factories import study_file
from tests.test_browser import (
    PAGE_ERRORS,
    PHONE,
    WAIT_MS,
    chromium,
    chromium_path,  # noqa: F401 (fixture)
    shoot,  # noqa: F401 (fixture)
    watch_errors,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DEFINITION = """name: Browser crowd study
dataset:
  source: browser-crowd
protocols:
  - name: direct
    format: direct
judges:
  kind: human
study:
  platform: prolific
  consent: You agree that your verdicts are stored for research.
  instructions: You read a question and decide which answer is right.
  quiz:
    - question: Who can see the hidden story?
      options: [the judge, the debaters]
      answer: 1
  practice:
    question: Why did the captain open the airlock?
    answers: [to vent a fire, to escape]
    correct: 0
    transcript: ["Debater A: the log says 'vent the fire'.", "Debater B: he wanted off the ship."]
    explanation: Only Debater A quoted the story.
  survey:
    - id: clarity
      question: How clear was the question?
      kind: scale
    - id: comments
      question: Anything else?
  completion_codes:
    completed: CRWDDONE
  bonus:
    per_correct: 0.4
"""


@pytest.fixture(autouse=True)
def no_page_errors():
    PAGE_ERRORS.clear()
    yield
    assert PAGE_ERRORS == []


def fits(page, width):
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def take_part(browser, base_url, experiment_id, pid, viewport):
    """One participant from the study link to Prolific's completion page; returns the final URL."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(WAIT_MS)
    prolific = []

    def prolific_page(route):
        prolific.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<h1>Prolific: submission complete</h1>")

    context.route(re.compile(r"^https://app\.prolific\.com/.*"), prolific_page)
    page = context.new_page()
    watch_errors(page, pid)
    suffix = "phone" if viewport["width"] < 500 else "desktop"
    page.goto(f"{base_url}/study/{experiment_id}/?PROLIFIC_PID={pid}&STUDY_ID=ST1&SESSION_ID=SE{pid}")

    expect(page.get_by_role("heading", name="Consent")).to_be_visible()
    fits(page, viewport["width"])
    shoot(page, f"crowd-consent-{suffix}.png")
    page.get_by_role("button", name="I agree to take part").click()

    page.get_by_label("the judge").check()  # wrong first: the quiz refuses it
    page.get_by_role("button", name="Check my answers").click()
    expect(page.locator(".notice.error")).to_contain_text("question 1 is answered wrong")
    page.get_by_label("the debaters").check()
    page.get_by_role("button", name="Check my answers").click()

    expect(page.get_by_role("heading", name="Practice debate")).to_be_visible()
    page.get_by_label("1. to vent a fire (%)").fill("80")
    page.get_by_label("2. to escape (%)").fill("20")
    fits(page, viewport["width"])
    page.get_by_role("button", name="Check my judgment").click()

    # Seated at once in a direct-judging debate; the tab title says so.
    expect(page.get_by_role("heading", name="Your debate is ready")).to_be_visible()
    expect(page).to_have_title(re.compile(r"^\(!\) Your debate is ready"))
    page.get_by_role("link", name="Open the debate").click()
    expect(page.locator("[data-headline]")).to_have_text("Your turn")
    expect(page).to_have_title(re.compile(r"^\(!\) Your turn"))
    fits(page, viewport["width"])
    shoot(page, f"crowd-room-{suffix}.png")
    slider = page.locator("#feedback-p0")
    slider.focus()
    for _ in range(20):
        slider.press("ArrowRight")
    page.get_by_role("button", name="Send feedback").click()

    page.get_by_role("link", name="Give your verdict").click()
    expect(page.locator("output[for=p0]")).to_have_text("70%")  # starts from the feedback just given
    page.get_by_label("Your reason").fill("The public material points to the first answer.")
    fits(page, viewport["width"])
    expect(page.locator("[data-verdict-form][data-ready]")).to_be_attached()  # the script that times the page
    page.get_by_role("button", name="Submit verdict").click()

    expect(page.get_by_role("heading", name="Your last verdict")).to_be_visible()
    expect(page.locator("[data-correct-answer]")).to_have_text("yes")
    expect(page.get_by_role("heading", name="A few questions about the debates")).to_be_visible()
    page.get_by_label("4").check()
    page.get_by_label("Anything else?").fill("Clear enough.")
    fits(page, viewport["width"])
    shoot(page, f"crowd-survey-{suffix}.png")
    page.get_by_role("button", name="Send and finish").click()

    expect(page.locator("[data-completion-code]")).to_have_text("CRWDDONE")
    shoot(page, f"crowd-done-{suffix}.png")
    expect(page).to_have_url("https://app.prolific.com/submissions/complete?cc=CRWDDONE", timeout=15_000)
    url = page.url
    context.close()
    return url, prolific


def test_a_prolific_participant_goes_from_the_link_to_the_completion_redirect(chromium_path, daphne_server, make_user):
    from debates.experiments import load_experiment, start_experiment
    from tests.factories import dataset_questions

    owner = make_user("crowdres", "researcher")
    dataset_questions(
        "browser-crowd",
        2,
        text=lambda i: f"Is statement {i} true?",
        hidden_material="",
        public_material="The record says yes.",
    )
    version, _ = load_experiment(DEFINITION, owner)
    start_experiment(version.pk)
    experiment_id = version.experiment_id
    from debates.models import Debate

    Debate.objects.filter(experiment_version=version).update(
        answer_order=[0, 1]
    )  # "yes" shown first: the judge leans to it

    with chromium() as browser:
        desktop = take_part(
            browser, daphne_server, experiment_id, "5f0000000000000000000001", {"width": 1280, "height": 900}
        )
        phone = take_part(browser, daphne_server, experiment_id, "5f0000000000000000000002", PHONE)

    from judging.models import StudyParticipant, Verdict

    for url, prolific in (desktop, phone):
        assert url == "https://app.prolific.com/submissions/complete?cc=CRWDDONE"
        assert prolific == [url]  # reached once, on Prolific's own host
    participants = StudyParticipant.objects.filter(experiment_id=experiment_id).order_by("external_id")
    assert [(p.status, p.completion_code, str(p.bonus)) for p in participants] == [
        ("completed", "CRWDDONE", "0.40")
    ] * 2
    assert [p.responses["survey"] for p in participants] == [{"clarity": 4, "comments": "Clear enough."}] * 2
    verdicts = Verdict.objects.filter(debate__experiment_version=version)
    assert verdicts.count() == 2 and all(v.hidden_seconds is not None for v in verdicts)


LIVE_WAIT = study_file(
    "Browser waiting room",
    "browser-wait",
    study="""\
        platform: prolific
        judge_timeout_seconds: 10
    """,
)


def test_the_waiting_room_moves_on_the_moment_a_seat_frees_up(chromium_path, daphne_server, make_user):
    """The waiting page listens on the person's own websocket (/ws/me/): when a dropped judge's seat
    is freed (here by the server side of the test, as another participant's request would), the
    page is told at once and takes its person to the debate, well before its 20 s fallback poll."""
    from playwright.sync_api import expect

    from debates.models import Debate, Participant
    from judging import crowd
    from tests.factories import dataset_questions, started_study
    from tests.test_browser_pixel import in_thread

    owner = make_user("waitres", "researcher")
    dataset_questions(
        "browser-wait",
        1,
        text="Is the only statement true?",
        hidden_material="",
        public_material="The record says yes.",
    )
    study = started_study(owner, LIVE_WAIT)
    version = crowd.study_version(study)
    first = crowd.enter(study, crowd.Entry("prolific", "5f00000000000000000000a1"))
    first = crowd.progress(crowd.skip_empty_steps(first, crowd.study_settings(version)))
    assert first.status == "judging"

    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        watch_errors(page, "waiting")
        page.goto(f"{daphne_server}/study/{study.pk}/?PROLIFIC_PID=5f00000000000000000000a2&STUDY_ID=S&SESSION_ID=W")
        expect(page.get_by_role("heading", name="Waiting for a debate to judge")).to_be_visible()
        expect(page.locator("html[data-personal-socket=open]")).to_be_attached()
        shoot(page, "crowd-waiting-live.png")
        assert in_thread(free_the_first_seat, first, version) == 1
        expect(page).to_have_title(re.compile(r"^\(!\) Your debate is ready"), timeout=8_000)
        context.close()
    debate = Debate.objects.get(experiment_version=version)
    assert Participant.objects.get(debate=debate, seat="judge").user.username.endswith("5f00000000000000000000a2")


def free_the_first_seat(first, version) -> int:
    """The first judge was seated long ago and never connected: their seat is freed."""
    from judging import crowd
    from judging.models import StudyParticipant

    StudyParticipant.objects.filter(pk=first.pk).update(status_changed_at=first.status_changed_at.replace(year=2000))
    return crowd.free_dropped_seats(version, crowd.study_settings(version))


def test_the_lobby_shows_a_new_debate_and_your_turn_at_once(chromium_path, daphne_server, make_user, question):
    """The lobby listens on the person's own websocket: a debate created and started for them shows
    up with its "Your turn" badge and tab title within seconds, not at its 30 s fallback poll."""
    from playwright.sync_api import expect

    from tests.test_browser import sign_in
    from tests.test_browser_pixel import in_thread

    alice, bob = make_user("lobbyalice", "debater"), make_user("lobbybob", "debater")
    with chromium() as browser:
        page = sign_in(browser, daphne_server, "lobbyalice")
        expect(page.locator("html[data-personal-socket=open]")).to_be_attached()
        debate_id = in_thread(start_a_debate, question, alice, bob)
        item = page.locator(".debate-item", has_text=f"Debate {debate_id}")
        expect(item.locator(".pill.turn")).to_have_text("Your turn", timeout=8_000)
        expect(page).to_have_title(re.compile(r"^\(!\) Your turn"))
        shoot(page, "lobby-live-your-turn.png")
        page.context.close()


def start_a_debate(question, first, second) -> int:
    from debates import live, services
    from debates.protocol import Protocol

    debate = services.create_debate(
        question, Protocol(rounds=("sequential",)), {"A": (first, 0), "B": (second, 1)}, answer_order=[0, 1]
    )
    live.publish(debate.pk, services.start_debate(debate.pk))
    return debate.pk
