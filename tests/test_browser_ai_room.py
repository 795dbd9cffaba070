"""Headless Chromium against a real daphne server and a real Celery worker: AI debaters (the scripted
back-end, which needs no network) write their turns while people watch the debate room.

- A judge watches an AI-vs-AI debate live: the sealed round shows only a character count, a
  sequential turn streams in word by word, quotes are marked by status and listed in the quotes
  panel; the judge gives feedback and the verdict. A researcher watches too, and only the
  researcher is told which seats are AIs.
- A person debates an AI: the composer explains how to quote, quotes a selection of the passage,
  shows the quote budget and the server's refusal of an over-budget speech; the judge sees
  verified, near and unverified quotes; the judge's comment reaches the debater as a question.
- An AI seat that cannot write (no API key) shows its failure to the researcher, and to the
  blinded judge only as a missed turn.

The database is only touched before and after the browsers run (see tests/test_browser.py)."""

import re

import pytest

from tests.test_browser import (  # noqa: F401 (chromium_path is a fixture)
    PAGE_ERRORS,
    PHONE,
    assert_fits_a_phone,
    chromium,
    chromium_path,
    open_room,
    shoot,
    sign_in,
)
from tests.test_quotes import STORY

from .conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

QUESTION = "Why does the captain open the airlock?"
ANSWERS = ["To vent a fire", "To escape the ship"]
TYPING = 0.12  # seconds between the scripted debater's words: slow enough to watch a turn stream in
SCREENSHOTS = (
    "ai-room-judge-sealed.png",
    "ai-room-judge-quotes.png",
    "ai-room-judge-streaming.png",
    "ai-room-observer-streaming.png",
    "ai-room-judge-feedback.png",
    "ai-room-judge-end.png",
    "ai-room-verdict.png",
    "ai-room-debater-composer.png",
    "ai-room-debater-refused.png",
    "ai-room-judge-evidence.png",
    "ai-room-judge-evidence-phone.png",
    "ai-room-debater-asked.png",
    "ai-room-observer-failure.png",
)
JUDGE_COMMENT = "Which sentence says what the fire had to do with the airlock?"


@pytest.fixture(scope="module", autouse=True)
def clean_artifacts():
    """Screenshots from an earlier run never pass for this run's."""
    for name in SCREENSHOTS:
        (ARTIFACTS / name).unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def fresh_page_errors():
    PAGE_ERRORS.clear()


def _people(make_user):
    judy = make_user("judy", "judge")
    rita = make_user("rita", "researcher")
    rita.is_staff = True
    rita.save()
    return judy, rita


def _ai_debate(question_text, judy, seats, protocol, agents):
    from django.contrib.auth.models import User

    from debates import services
    from debates.models import Question

    question = Question.objects.create(
        text=question_text,
        answers=ANSWERS,
        correct_index=0,
        hidden_material=STORY,
        public_material="A short story about a spaceship.",
    )
    debate = services.create_debate(
        question, protocol, seats, judge=judy, answer_order=[0, 1], created_by=User.objects.get(username="rita")
    )  # rita runs it
    for seat, agent in agents.items():
        debate.participants.filter(seat=seat).update(agent=agent)
    return debate


def _words(text):
    return re.findall(r"[a-z0-9']+", text.lower())


def test_a_judge_watches_an_ai_vs_ai_debate_live_and_gives_the_verdict(
    chromium_path, transactional_db, celery_worker, daphne_server, make_user
):
    from debates.protocol import Protocol

    judy, _ = _people(make_user)
    protocol = Protocol(
        rounds=("simultaneous", "judge_feedback", "sequential"),
        speaking_order=("A", "B"),
        char_limit=500,
        quote_chars_per_turn=150,
    )
    scripted = {"backend": "scripted", "token_delay": TYPING}
    debate = _ai_debate(QUESTION, judy, {"A": (None, 0), "B": (None, 1)}, protocol, {"A": scripted, "B": scripted})

    with chromium() as browser:
        seen = watch_and_judge(browser, daphne_server, debate.pk)

    from debates.models import Debate
    from judging.models import Verdict

    debate = Debate.objects.get(pk=debate.pk)
    assert debate.status == Debate.COMPLETE
    speeches = {(t.round_index, t.seat): t for t in debate.turns.filter(kind="speech").order_by("id")}
    assert set(speeches) == {(0, "A"), (0, "B"), (2, "A"), (2, "B")}
    feedback = debate.turns.get(kind="feedback")
    assert feedback.text == JUDGE_COMMENT and feedback.probabilities is not None
    verdict = Verdict.objects.get(debate=debate, judge=judy)
    assert verdict.reason.startswith("Debater A quoted")
    # What the judge's page showed matches what was stored.
    stored_quotes = [q for turn in speeches.values() for q in turn.payload.get("quotes", [])]  # in saving order
    assert stored_quotes and seen["panel"] == [(q["text"], q["status"]) for q in stored_quotes]
    streamed = _words(seen["streamed_A"])
    assert (
        len(streamed) >= 3
        and _words(speeches[(2, "A")].text.replace("<quote>", " ").replace("</quote>", " "))[: len(streamed)]
        == streamed
    )  # the words the observer saw being written are the start of the saved speech
    assert "(AI)" not in seen["judge_html"] and "(AI)" in seen["observer_html"]
    assert not PAGE_ERRORS
    for name in (
        "ai-room-judge-sealed.png",
        "ai-room-judge-quotes.png",
        "ai-room-judge-streaming.png",
        "ai-room-observer-streaming.png",
        "ai-room-judge-feedback.png",
        "ai-room-judge-end.png",
        "ai-room-verdict.png",
    ):
        assert (ARTIFACTS / name).stat().st_size > 10_000, name


def watch_and_judge(browser, url, debate_id):
    """The judge and a researcher watch; the researcher starts the debate. Returns what they saw."""
    from playwright.sync_api import expect

    judy = sign_in(browser, url, "judy")
    rita = sign_in(browser, url, "rita")
    open_room(judy, debate_id)
    open_room(rita, debate_id)
    rita.get_by_role("button", name="Start the debate").click()

    # Round 1 is simultaneous: the observer sees how much an AI has written, never what; the
    # blinded judge sees nothing of AI writing at all (a person's is never streamed either).
    writing = rita.locator(".turn.ai-progress.ai-writing")
    expect(writing.first.locator("header .who")).to_have_text(re.compile(r"^Debater [AB] \(AI\) is writing…$"))
    expect(writing.first.locator(".ai-status")).to_have_text(re.compile(r"^writing… \(\d+ characters, sealed\)$"))
    expect(judy.locator(".turn.ai-progress")).to_have_count(0)
    shoot(judy, "ai-room-judge-sealed.png")

    # Both speeches revealed: every quote marked by the server's status and listed in the panel.
    expect(judy.locator("[data-headline]")).to_have_text("Your turn")  # round 2 starts once both are in
    expect(judy.locator(".turn.seat-A:not(.ai-progress) .text")).to_have_count(1)
    expect(judy.locator(".turn.seat-B:not(.ai-progress) .text")).to_have_count(1)
    expect(judy.locator(".turn.sealed")).to_have_count(0)
    expect(judy.locator(".turn.ai-progress")).to_have_count(0)
    verified = judy.locator(".transcript .quote-verified")
    expect(verified.first.locator(".quote-badge")).to_have_text("✓ verified quote")
    expect(judy.locator("[data-quotes] li")).to_have_count(verified.count())
    expect(judy.locator("[data-quotes-summary]")).to_contain_text("Debater A:")
    shoot(judy, "ai-room-judge-quotes.png")

    # Round 2: the judge's feedback, with a comment the AIs answer in round 3.
    first = judy.locator("#feedback-p0")
    first.focus()
    for _ in range(15):
        first.press("ArrowRight")
    expect(judy.locator("output[for=feedback-p0]")).to_have_text("65%")
    judy.get_by_label("Comment for the debaters").fill(JUDGE_COMMENT)
    shoot(judy, "ai-room-judge-feedback.png")
    judy.get_by_role("button", name="Send feedback").click()
    expect(rita.locator(".turn.seat-judge .judge-comment")).to_have_text(f"Judge asks: {JUDGE_COMMENT}")
    expect(judy.locator(".turn.seat-judge .judge-comment")).to_have_text(f"Your comment: {JUDGE_COMMENT}")

    # Round 3 is sequential: Debater A's speech streams in word by word to the observer, then is
    # replaced by the saved one; the blinded judge only gets the saved speech.
    streaming = rita.locator(".turn.ai-progress.seat-A .text.streaming")
    expect(rita.locator(".turn.ai-progress.seat-A header .who")).to_have_text("Debater A (AI) is writing…")
    expect(streaming).to_have_text(re.compile(r"(\w+\W+){4}"))  # a few words in, the speech still going
    streamed_a = streaming.text_content()
    expect(judy.locator(".turn.ai-progress")).to_have_count(0)
    shoot(judy, "ai-room-judge-streaming.png")
    shoot(rita, "ai-room-observer-streaming.png")
    observer_html = rita.content()
    assert "(AI)" not in judy.content() and "is writing" not in judy.content()
    expect(judy.locator(".turn.seat-A:not(.ai-progress)")).to_have_count(2)

    # The debate ends after Debater B's speech: the judge reads the quotes again and gives the verdict.
    verdict_link = judy.get_by_role("link", name="Give your verdict")
    expect(verdict_link).to_be_visible()
    expect(judy.locator(".turn.ai-progress")).to_have_count(0)
    panel = [
        (item.locator("q").text_content(), item.locator(".quote").get_attribute("class").split("quote-")[-1])
        for item in judy.locator("[data-quotes] li").all()
    ]
    assert len(panel) == judy.locator(".transcript .quote").count()
    shoot(judy, "ai-room-judge-end.png")
    judge_html = judy.content()
    verdict_link.click()
    expect(judy).to_have_url(re.compile(rf"/debates/{debate_id}/verdict/$"))
    judy.locator("#p0").focus()
    for _ in range(3):
        judy.keyboard.press("PageUp")
    judy.get_by_label("Your reason").fill(
        "Debater A quoted the story on the fire; Debater B's quotes were off the point."
    )
    shoot(judy, "ai-room-verdict.png")
    judy.get_by_role("button", name="Submit verdict").click()
    expect(judy.get_by_role("heading", name="Thank you: your verdict is recorded")).to_be_visible()
    expect(rita.locator("[data-status]")).to_have_text("Complete")
    for page in (judy, rita):
        page.context.close()
    return {"panel": panel, "streamed_A": streamed_a, "judge_html": judge_html, "observer_html": observer_html}


NEAR_QUOTE = "the captian's quick decision saved the crew"  # two letters swapped
UNVERIFIED_QUOTE = "Mara planned to leave the ship"
SELECTED = "opened the airlock to vent the fire"


def test_a_person_debates_an_ai_with_quotes_and_answers_the_judge(
    chromium_path, transactional_db, celery_worker, daphne_server, make_user
):
    from debates import services
    from debates.protocol import Protocol

    judy, _ = _people(make_user)
    alice = make_user("alice", "debater")
    protocol = Protocol(
        rounds=("sequential", "judge_feedback", "sequential"),
        speaking_order=("A", "B"),
        char_limit=600,
        quote_chars_per_turn=120,
        quote_chars_per_debate=160,
    )
    debate = _ai_debate(
        QUESTION,
        judy,
        {"A": (alice, 0), "B": (None, 1)},
        protocol,
        {"B": {"backend": "scripted", "token_delay": TYPING}},
    )
    services.start_debate(debate.pk)

    with chromium() as browser:
        debate_against_the_ai(browser, daphne_server, debate.pk)

    quotes = debate.turns.get(seat="A", round_index=0).payload["quotes"]
    assert [(q["text"], q["status"]) for q in quotes] == [
        (SELECTED, "verified"),
        (NEAR_QUOTE, "near"),
        (UNVERIFIED_QUOTE, "unverified"),
    ]
    assert debate.turns.filter(seat="A").count() == 1  # the refused speech left nothing behind
    assert debate.turns.filter(seat="B", kind="speech").count() == 1
    assert not PAGE_ERRORS
    for name in (
        "ai-room-debater-composer.png",
        "ai-room-debater-refused.png",
        "ai-room-judge-evidence.png",
        "ai-room-judge-evidence-phone.png",
        "ai-room-debater-asked.png",
    ):
        assert (ARTIFACTS / name).stat().st_size > 10_000, name


def debate_against_the_ai(browser, url, debate_id):
    from playwright.sync_api import expect

    alice = sign_in(browser, url, "alice")
    judy = sign_in(browser, url, "judy")
    open_room(alice, debate_id)
    open_room(judy, debate_id)
    composer = alice.get_by_label("Speech for answer")
    budget = alice.locator("[data-quote-budget]")
    expect(alice.locator("#quote-help")).to_contain_text("<quote>words copied from the passage</quote>")
    expect(budget).to_have_text(
        "Quotes in this speech: 0 / 120 characters (120 per speech, 160 of 160 left in this debate)."
    )

    # Select words in the passage and quote them with the button: the markup goes in at the cursor.
    composer.fill("The captain ")
    alice.evaluate(
        """(words) => {
        const passage = document.querySelector('#passage .passage');
        const text = passage.firstChild;
        const start = text.data.indexOf(words);
        const range = document.createRange();
        range.setStart(text, start);
        range.setEnd(text, start + words.length);
        document.getSelection().removeAllRanges();
        document.getSelection().addRange(range);
    }""",
        SELECTED,
    )
    alice.get_by_role("button", name="Quote the words you selected in the passage").click()
    expect(composer).to_have_value(f"The captain <quote>{SELECTED}</quote> ")
    expect(budget).to_have_text(re.compile(rf"^Quotes in this speech: {len(SELECTED)} / 120 characters"))

    # Over the per-speech budget: the composer warns, and the server's refusal shows by the composer.
    too_long = f"The captain <quote>{SELECTED}</quote> and <quote>{STORY[:100]}</quote>"
    composer.fill(too_long)
    expect(budget).to_contain_text("Quote 15 characters less, or the speech will be refused.")
    alice.get_by_role("button", name="Send speech").click()
    expect(alice.locator("[data-error]")).to_have_text(
        "quotes may have at most 120 characters per turn (this speech quotes 135)"
    )
    expect(composer).to_have_value(too_long)
    shoot(alice, "ai-room-debater-refused.png")

    speech = (
        f"The captain <quote>{SELECTED}</quote>. Reyes wrote that <quote>{NEAR_QUOTE}</quote>. "
        f"Nobody says <quote>{UNVERIFIED_QUOTE}</quote>."
    )
    composer.fill(speech)
    alice.get_by_role("button", name="Send speech").click()
    expect(composer).to_have_value("")
    expect(alice.locator("[data-error]")).to_be_empty()
    used = len(SELECTED) + len(NEAR_QUOTE) + len(UNVERIFIED_QUOTE)
    expect(budget).to_have_text(
        f"Quotes in this speech: 0 / {160 - used} characters (120 per speech, {160 - used} of 160 left in this debate)."
    )

    # The AI answers. The blinded person is not told that it is an AI: nothing of its writing
    # streams (a person's writing never does), its speech appears when it is saved.
    expect(alice.locator(".turn.seat-B:not(.ai-progress) .text")).to_have_count(1)
    expect(alice.locator(".turn.ai-progress")).to_have_count(0)
    assert "(AI)" not in alice.content() and "is writing" not in alice.content()
    shoot(alice, "ai-room-debater-composer.png")

    # The judge sees each quote's status in words, in the speech and in the panel.
    mine = judy.locator(".turn.seat-A").first
    expect(mine.locator(".quote-verified .quote-badge")).to_have_text("✓ verified quote")
    expect(mine.locator(".quote-near .quote-badge")).to_have_text("≈ near match")
    expect(mine.locator(".quote-unverified .quote-badge")).to_have_text("✗ not found in the passage")
    expect(mine.locator(".quote-unverified q")).to_have_text(UNVERIFIED_QUOTE)
    expect(judy.locator("[data-quotes] li").nth(1)).to_contain_text(NEAR_QUOTE)
    expect(judy.locator("[data-headline]")).to_have_text("Your turn")  # Debater B's speech is in
    expect(judy.locator("[data-quotes-summary]")).to_contain_text(
        "Debater A: 1 verified, 1 near match, 1 not found in the passage"
    )
    shoot(judy, "ai-room-judge-evidence.png")
    judy.set_viewport_size(PHONE)
    assert_fits_a_phone(judy)
    shoot(judy, "ai-room-judge-evidence-phone.png")
    judy.set_viewport_size({"width": 1280, "height": 900})

    # The judge's comment reaches the debater as a question to answer.
    judy.get_by_label("Comment for the debaters").fill("Debater A, which line shows the fire was vented?")
    judy.get_by_role("button", name="Send feedback").click()
    expect(alice.locator(".turn.seat-judge .judge-comment")).to_have_text(
        "Judge asks: Debater A, which line shows the fire was vented?"
    )
    expect(alice.locator("[data-headline]")).to_have_text("Your turn")
    shoot(alice, "ai-room-debater-asked.png")
    for page in (alice, judy):
        page.context.close()


def test_an_ai_seat_that_cannot_write_is_shown_as_failed_only_to_those_who_may_know(
    chromium_path, transactional_db, celery_worker, daphne_server, make_user
):
    from debates.models import Debate
    from debates.protocol import Protocol

    judy, _ = _people(make_user)
    no_key = {"backend": "no-key", "model": "gpt-4o-mini"}  # tests/settings.py: its key variable is not set
    debate = _ai_debate(
        QUESTION,
        judy,
        {"A": (None, 0), "B": (None, 1)},
        Protocol(rounds=("sequential",)),
        {"A": no_key, "B": {"backend": "scripted", "token_delay": 0}},
    )

    with chromium() as browser:
        from playwright.sync_api import expect

        judge = sign_in(browser, daphne_server, "judy")
        rita = sign_in(browser, daphne_server, "rita")
        open_room(judge, debate.pk)
        open_room(rita, debate.pk)
        rita.get_by_role("button", name="Start the debate").click()
        failure = rita.locator(".turn.timeout.seat-A .ai-failure")
        expect(failure).to_contain_text("Debater A (AI) could not write this turn")
        expect(failure).to_contain_text("the no-key back-end has no API key")
        expect(judge.locator(".turn.timeout.seat-A .text")).to_have_text("Ran out of time: no speech this turn.")
        expect(judge.locator(".turn.seat-B .text")).to_have_count(1)
        expect(rita.locator(".turn.seat-B .text")).to_have_count(1)
        shoot(rita, "ai-room-observer-failure.png")
        rita.reload()  # after a reload the reason comes from the stored turn
        expect(rita.locator(".turn.timeout.seat-A .ai-failure")).to_contain_text("the no-key back-end has no API key")
        judge_html = judge.content()
        judge.reload()
        expect(judge.locator(".turn.timeout.seat-A .text")).to_have_text("Ran out of time: no speech this turn.")
        judge_html += judge.content()
        for page in (judge, rita):
            page.context.close()

    assert "could not write" not in judge_html and "no API key" not in judge_html
    assert Debate.objects.get(pk=debate.pk).status == Debate.AWAITING_VERDICT
    assert not PAGE_ERRORS
