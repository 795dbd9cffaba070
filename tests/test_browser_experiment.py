"""Headless Chromium against a real daphne server and a real Celery worker: a researcher loads an
experiment file through the web form (a broken one first, whose errors are shown by line), starts
it, and watches the live dashboard while a judge judges the AI-vs-AI text debate live in the room
(AI turns arrive, the judge gives feedback, then the verdict). Identities are revealed to the judge
after the verdict, as the file allows. A second judge then judges the finished debate offline,
turn by turn. Screenshots go to test-artifacts/.

The database is only touched before and after the browsers run (see tests/test_browser.py)."""

import re

import pytest

from tests.test_browser import PAGE_ERRORS, chromium, chromium_path, shoot, sign_in  # noqa: F401 (fixture)
from tests.test_quotes import STORY

from .conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EXPERIMENT_FILE = """name: AI debate, live judge
description: Two scripted AI debaters argue over the Stardust story; a person judges live.
dataset:
  source: browser-experiment
protocols:
  - name: debate
    format: debate
    rounds: [sequential, judge_feedback, sequential]
    char_limit: 600
    quote_chars_per_turn: 150
debaters:
  kind: ai
  backend: scripted
  parameters:
    token_delay: 0.03
judges:
  kind: human
  per_debate: 2
  offline: stepwise
  pool: [judy, otto]
counterbalance:
  seed: 7
blinding:
  aliases: true
  reveal_after_verdict: true
target_verdicts: 2
"""
BROKEN_LINE = "    format: debait"
JUDGE_COMMENT = "Which sentence says why the airlock was opened?"
SCREENSHOTS = (
    "experiment-form-errors.png",
    "experiment-saved.png",
    "experiment-started.png",
    "experiment-judge-room.png",
    "experiment-judge-feedback.png",
    "experiment-verdict.png",
    "experiment-judge-revealed.png",
    "experiment-dashboard-verdict.png",
    "experiment-offline-step.png",
    "experiment-offline-done.png",
)


@pytest.fixture(autouse=True)
def fresh_artifacts():
    PAGE_ERRORS.clear()
    for name in SCREENSHOTS:
        (ARTIFACTS / name).unlink(missing_ok=True)


def test_a_researcher_loads_and_starts_an_experiment_and_a_judge_judges_the_ai_debate_live(
    chromium_path, transactional_db, celery_worker, daphne_server, make_user, tmp_path
):
    from debates.models import Question

    make_user("rita", "researcher")
    make_user("judy", "judge")
    make_user("otto", "judge")
    Question.objects.create(
        text="Why does the captain open the airlock?",
        answers=["To vent a fire", "To escape the ship"],
        correct_index=0,
        hidden_material=STORY,
        public_material="A short story about a spaceship.",
        source="browser-experiment",
        external_id="airlock",
    )
    good = tmp_path / "ai-debate.yaml"
    good.write_text(EXPERIMENT_FILE)
    broken = tmp_path / "broken.yaml"
    broken.write_text(EXPERIMENT_FILE.replace("    format: debate", BROKEN_LINE))

    with chromium() as browser:
        seen = run_the_experiment(browser, daphne_server, good, broken)

    from debates.models import Debate, Experiment
    from judging.models import Assignment, Verdict

    experiment = Experiment.objects.get()
    version = experiment.versions.get()
    assert version.frozen_at is not None and version.source_name == "ai-debate.yaml"
    debate = Debate.objects.get(experiment_version=version)
    assert debate.status == Debate.COMPLETE
    assert all(p.agent["backend"] == "scripted" for p in debate.participants.all() if p.is_debater)
    kinds = list(debate.turns.values_list("seat", "kind"))
    assert len(kinds) == 5 and kinds[2] == ("judge", "feedback")
    assert debate.turns.get(kind="feedback").text == JUDGE_COMMENT
    live = Verdict.objects.get(debate=debate, live=True)
    assert live.judge.username == "judy" and live.reason.startswith("Debater")
    offline = Verdict.objects.get(debate=debate, live=False)
    assignment = Assignment.objects.get(debate=debate)
    assert offline.judge.username == "otto" and assignment.verdict == offline
    assert list(assignment.reports.values_list("step", flat=True)) == [1, 2, 3, 4]
    # The judge's browser was never sent the passage, the right answer or who was honest.
    for secret in ("hydroponics", "correct_answer", "honest_seats"):
        assert secret not in seen["judge_html"], secret
    assert "AI (scripted)" not in seen["judge_html_before_verdict"]
    assert not PAGE_ERRORS, PAGE_ERRORS
    for name in SCREENSHOTS:
        assert (ARTIFACTS / name).stat().st_size > 10_000, name


def run_the_experiment(browser, url, good, broken):
    from playwright.sync_api import expect

    rita = sign_in(browser, url, "rita")
    rita.get_by_role("link", name="Experiments →").click()
    rita.get_by_role("link", name="New experiment").first.click()
    expect(rita.get_by_role("heading", name="New experiment")).to_be_visible()

    # A broken file: the errors name the line, the line is marked, nothing is saved.
    rita.get_by_label("…or load a file").set_input_files(str(broken))
    rita.get_by_role("button", name="Save the experiment").click()
    expect(rita.locator("[data-spec-errors]")).to_contain_text("nothing was saved")
    expect(rita.locator("[data-spec-errors]")).to_contain_text("line 7: protocols[0].format: must be one of")
    expect(rita.locator("[data-error-line='7']")).to_contain_text("format: debait")
    shoot(rita, "experiment-form-errors.png")

    # The good file.
    rita.get_by_label("…or load a file").set_input_files(str(good))
    rita.get_by_role("button", name="Save the experiment").click()
    expect(rita.get_by_role("heading", name="AI debate, live judge")).to_be_visible()
    expect(rita.locator(".messages")).to_contain_text("Saved AI debate, live judge as version 1")
    expect(rita.locator("[data-dashboard-conn]")).to_have_text("Live")
    shoot(rita, "experiment-saved.png")

    rita.get_by_role("button", name="Start version 1").click()
    expect(rita.locator(".messages")).to_contain_text("Started version 1: 1 debate created, 1 under way.")
    expect(rita.locator("[data-dashboard-conn]")).to_have_text("Live")
    expect(rita.locator("[data-field=in-progress] .debate-item")).to_have_count(1)
    debate_link = rita.locator("[data-field=in-progress] a").first
    debate_id = int(re.search(r"/debates/(\d+)/", debate_link.get_attribute("href")).group(1))
    shoot(rita, "experiment-started.png")

    # The judge finds the debate in the lobby and watches the AI turns arrive.
    judy = sign_in(browser, url, "judy")
    judy.locator(f'a[href="/debates/{debate_id}/"]').first.click()
    expect(judy.locator("[data-conn]")).to_have_text("Connected")
    expect(judy.locator(".transcript .turn.seat-A:not(.ai-progress) .text")).to_have_count(1, timeout=60_000)
    expect(judy.locator(".transcript .turn.seat-B:not(.ai-progress) .text")).to_have_count(1, timeout=60_000)
    expect(judy.locator("[data-headline]")).to_have_text("Your turn")
    shoot(judy, "experiment-judge-room.png")

    first = judy.locator("#feedback-p0")
    first.focus()
    for _ in range(10):
        first.press("ArrowRight")
    judy.get_by_label("Comment for the debaters").fill(JUDGE_COMMENT)
    shoot(judy, "experiment-judge-feedback.png")
    judy.get_by_role("button", name="Send feedback").click()
    # The second round: both AIs answer, then the debate is over.
    expect(judy.locator(".transcript .turn.seat-A:not(.ai-progress) .text")).to_have_count(2, timeout=60_000)
    expect(judy.locator(".transcript .turn.seat-B:not(.ai-progress) .text")).to_have_count(2, timeout=60_000)
    verdict_link = judy.get_by_role("link", name="Give your verdict")
    expect(verdict_link).to_be_visible()
    judge_html_before = judy.content()
    verdict_link.click()
    judy.locator("#p0").focus()
    for _ in range(2):
        judy.keyboard.press("PageUp")
    judy.get_by_label("Your reason").fill("Debater A quoted the sentence about venting the fire.")
    shoot(judy, "experiment-verdict.png")
    judy.get_by_role("button", name="Submit verdict").click()
    expect(judy.get_by_role("heading", name="Thank you: your verdict is recorded")).to_be_visible()

    # After the verdict the file lets the judge learn who debated; the dashboard counts the verdict live.
    judy.goto(f"{url}/debates/{debate_id}/")
    expect(judy.locator("[data-seats]")).to_contain_text("AI (scripted)")
    judge_html_after = judy.content()
    shoot(judy, "experiment-judge-revealed.png")
    expect(rita.locator("[data-field=verdicts]")).to_have_text("1")
    expect(rita.locator("[data-field=target]")).to_have_text("1 / 2")
    expect(rita.locator("[data-field=offline]")).to_contain_text("1 assigned")
    shoot(rita, "experiment-dashboard-verdict.png")

    # A second judge judges the finished debate offline, one turn at a time.
    otto = sign_in(browser, url, "otto")
    otto.get_by_role("link", name=re.compile(r"^Judge offline")).click()
    for step in range(1, 5):
        expect(otto.get_by_role("heading", name=re.compile(rf"^Turn {step} of 4"))).to_be_visible()
        expect(otto.locator("[data-offline-transcript] .turn:not(.seat-judge)")).to_have_count(step)
        if step == 2:
            shoot(otto, "experiment-offline-step.png")
        otto.locator("[data-step-form] button[type=submit]").click()
    expect(otto.locator("[data-verdict-form][data-ready]")).to_be_attached()  # its script handles the keys
    otto.locator("#p0").focus()
    otto.keyboard.press("PageUp")
    otto.get_by_label("Your reason").fill("The quotes about the fire were verified.")
    otto.get_by_role("button", name="Submit verdict").click()
    expect(otto.get_by_role("heading", name="Thank you: your verdict is recorded")).to_be_visible()
    shoot(otto, "experiment-offline-done.png")
    expect(rita.locator("[data-field=verdicts]")).to_have_text("2")
    for page in (rita, judy, otto):
        page.context.close()
    return {"judge_html": judge_html_before + judge_html_after, "judge_html_before_verdict": judge_html_before}
