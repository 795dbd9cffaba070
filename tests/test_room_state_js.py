"""The room's pure state module (static/js/debate-state.js) run under Node: the quote markup the
client reads must match the server's (debates/quotes.py), and an AI turn's progress frames must
give the placeholder the room shows. No browser needed; skipped where Node is missing, failed
when it is missing under CI."""

import json
import os
import random
import shutil
import subprocess

import pytest

from debates import quotes

from .conftest import ROOT

NODE = shutil.which("node")


@pytest.fixture(autouse=True)
def node():
    """Skipped where Node is missing, except under CI, where a missing Node fails the run."""
    if NODE is None:
        message = "node is missing (make test installs Debian's nodejs where it can: platform/ensure-debian-command.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def run_js(body: str, data):
    """Runs `body` (which sees `m`, the module, and `data`) and returns what it prints as JSON."""
    script = (
        f"const m = await import({json.dumps((ROOT / 'static/js/debate-state.js').as_uri())});\n"
        f"const data = JSON.parse(process.argv[1]);\n{body}"
    )
    done = subprocess.run(
        [NODE, "--input-type=module", "-e", script, json.dumps(data)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


PIECES = ["word ", "Ünïcode ", "🚀 ", "  ", "\n", "\t", ", ", "<quote>", "</quote>", "<QUOTE >", "</quote >", "x"]


def random_speech(rng):
    """Text with well-formed quotes whose insides are random pieces (some with spaces at the ends)."""
    parts = []
    for _ in range(rng.randint(0, 4)):
        parts.append("".join(rng.choice(PIECES[:7]) for _ in range(rng.randint(0, 3))))
        inner = "".join(rng.choice(PIECES[:7] + ["x"]) for _ in range(rng.randint(1, 5)))
        parts.append(
            f"{rng.choice(['<quote>', '<QUOTE >', '<quote  >'])}{inner}{rng.choice(['</quote>', '</quote >'])}"
        )
    parts.append(rng.choice(PIECES[:7]))
    return "".join(parts)


def test_the_client_counts_quote_characters_and_finds_quotes_as_the_server_does():
    rng = random.Random(4)
    speeches = [random_speech(rng) for _ in range(300)]
    found = run_js(
        """console.log(JSON.stringify(data.map((text) => ({
        chars: m.quoteChars(text),
        quotes: m.speechSegments(text, []).filter((s) => s.quote !== undefined).map((s) => s.quote)}))));""",
        speeches,
    )
    for text, client in zip(speeches, found):
        marks = quotes.find_quotes(text)
        assert client["quotes"] == [mark.text for mark in marks], text
        assert client["chars"] == quotes.quote_chars(marks), text


def test_span_quotes_count_the_passage_characters_they_name():
    text = 'As it says <quote span="10:25"/> and <quote>five!</quote>'
    assert run_js("console.log(JSON.stringify(m.quoteChars(data)));", text) == 15 + 5
    assert quotes.quote_chars(quotes.find_quotes(quotes.expand_spans(text, "x" * 40))) == 15 + 5


def test_statuses_go_to_quotes_in_order_and_a_half_written_quote_is_pending():
    saved, streaming = run_js(
        """
        const statuses = [{status: "verified"}, {status: "unverified"}];
        console.log(JSON.stringify([
          m.speechSegments("A <quote>one</quote> b <quote> two </quote> c <quote>three</quote>", statuses),
          m.speechSegments("Says: <quote>one</quote> and <quote>half wri", [], {streaming: true}),
        ]));""",
        None,
    )
    assert saved == [
        {"text": "A "},
        {"quote": "one", "status": "verified"},
        {"text": " b "},
        {"quote": "two", "status": "unverified"},
        {"text": " c "},
        {"quote": "three", "status": "unchecked"},
    ]
    assert streaming == [
        {"text": "Says: "},
        {"quote": "one", "status": "pending"},
        {"text": " and "},
        {"quote": "half wri", "status": "pending", "open": True},
    ]
    cut = run_js(
        "console.log(JSON.stringify(data.map((t) => m.speechSegments(t, [], {streaming: true}))));",
        ["The story <", "The story <quo", "x <quote>words</quo"],
    )
    assert cut == [
        [{"text": "The story "}],
        [{"text": "The story "}],
        [{"text": "x "}, {"quote": "words", "status": "pending", "open": True}],
    ]


def test_the_quote_budget_counts_earlier_speeches_and_the_draft():
    state = {
        "my_seat": "A",
        "protocol": {"quote_chars_per_turn": 100, "quote_chars_per_debate": 150},
        "turns": [
            {"seat": "A", "kind": "speech", "text": "x", "payload": {"quotes": [{"text": "a" * 60}]}},
            {"seat": "B", "kind": "speech", "text": "<quote>" + "b" * 50 + "</quote>"},
            {"seat": "A", "kind": "speech", "text": "sealed, mine: <quote>" + "c" * 30 + "</quote>"},
        ],
    }
    budget, none = run_js(
        """console.log(JSON.stringify([
        m.quoteBudget(data, "draft <quote>" + "d".repeat(70) + "</quote>"),
        m.quoteBudget({...data, protocol: {}}, "<quote>x</quote>")]));""",
        state,
    )
    assert budget == {"perTurn": 100, "perDebate": 150, "debateLeft": 60, "inDraft": 70, "allowed": 60, "over": 10}
    assert none is None


def ai_state(**extra):
    return dict(
        {
            "status": "live",
            "round": 0,
            "round_kind": "sequential",
            "my_seat": None,
            "view": "judge",
            "protocol": {"rounds": ["simultaneous", "sequential"]},
            "turns": [],
            "seats": [{"seat": "A", "name": "Debater A"}, {"seat": "B", "name": "Debater B", "ai": True}],
        },
        **extra,
    )


def test_an_ai_turn_streams_retries_and_is_replaced_by_the_saved_speech():
    frames = [
        {"type": "ai_turn_started", "seat": "B", "round": 1, "streams_text": True},
        {"type": "ai_token", "seat": "B", "round": 1, "delta": "Half a ", "chars": 7},
        {"type": "ai_turn_retry", "seat": "B", "round": 1, "code": "http_500", "attempt": 2},
        {"type": "ai_token", "seat": "B", "round": 1, "delta": "Whole ", "chars": 6},
        {"type": "ai_token", "seat": "B", "round": 1, "delta": "speech.", "chars": 13},
    ]
    steps = run_js(
        """
        const progress = new Map();
        const seen = data.frames.map((frame) => {
          const entry = m.applyAiFrame(progress, frame);
          return {text: entry.text, retries: entry.retries, ...m.describeAiProgress(data.state, entry)};
        });
        data.state.turns.push({seat: "B", round: 1, kind: "speech", text: "Whole speech."});
        m.settleAiProgress(progress, data.state);
        console.log(JSON.stringify({seen, left: progress.size}));""",
        {"frames": frames, "state": ai_state()},
    )
    assert [s["text"] for s in steps["seen"]] == ["", "Half a ", "", "Whole ", "Whole speech."]
    assert steps["seen"][-1]["retries"] == 1
    assert {s["headline"] for s in steps["seen"]} == {"Debater B (AI) is writing…"}
    assert steps["left"] == 0


def test_a_sealed_ai_turn_shows_only_its_length_and_a_blinded_viewer_is_not_told_it_is_an_ai():
    seen = run_js(
        """
        const progress = new Map();
        m.applyAiFrame(progress, {type: "ai_turn_started", seat: "A", round: 0, streams_text: false});
        const entry = m.applyAiFrame(progress, {type: "ai_token", seat: "A", round: 0, delta: "", chars: 312});
        console.log(JSON.stringify(m.describeAiProgress(data, entry)));""",
        ai_state(),
    )
    assert seen == {"headline": "Debater A is writing…", "detail": "writing… (312 characters, sealed)"}


def test_a_failed_ai_turn_gives_its_reason_to_the_timed_out_turn():
    turn = run_js(
        """
        const progress = new Map();
        const entry = m.applyAiFrame(progress, {type: "ai_turn_failed", seat: "B", round: 1, code: "budget_exhausted",
                                                message: "the token budget is spent"});
        const described = m.describeAiProgress(data, entry);
        data.turns.push({seat: "B", round: 1, kind: "timeout"});
        m.settleAiProgress(progress, data);
        console.log(JSON.stringify({described, turn: data.turns[0], left: progress.size}));""",
        ai_state(round=1),
    )
    assert turn["described"] == {
        "headline": "Debater B (AI) could not write this turn",
        "detail": "the token budget is spent",
    }
    assert turn["turn"]["ai_error"] == {"code": "budget_exhausted", "message": "the token budget is spent"}
    assert turn["left"] == 0


def test_feedback_events_keep_the_judges_question_and_speech_events_the_quotes_panel():
    state = run_js(
        """
        const state = data;
        m.applyEvent(state, {kind: "speech", seq: 1, data: {seat: "A", round: 0, text: "<quote>x</quote>",
                                                            quotes: [{text: "x", status: "near"}]}});
        m.applyEvent(state, {kind: "feedback", seq: 2, data: {round: 1, comment: "Why?", probabilities: [0.5, 0.5]}});
        const asked = state.judge_question;
        m.applyEvent(state, {kind: "feedback", seq: 3, data: {round: 2, comment: " ", probabilities: [0.5, 0.5]}});
        console.log(JSON.stringify({asked, after: state.judge_question, quotes: state.quotes}));""",
        ai_state(quotes=[], judge_question=None),
    )
    assert state["asked"] == {"round": 1, "text": "Why?"} and state["after"] is None
    assert state["quotes"] == [{"text": "x", "status": "near", "round": 0, "seat": "A"}]


def test_a_reveal_adds_the_speeches_a_judge_was_never_told_were_sealed():
    turns = run_js(
        """
        const state = data;
        m.applyEvent(state, {kind: "speeches_revealed", seq: 1, data: {round: 0, speeches: [
          {seat: "A", text: "First.", quotes: []},
          {seat: "B", text: "<quote>x</quote>", quotes: [{text: "x", status: "verified"}]}]}});
        console.log(JSON.stringify({turns: state.turns, quotes: state.quotes}));""",
        ai_state(quotes=[]),
    )
    assert turns["turns"] == [
        {"round": 0, "seat": "A", "kind": "speech", "text": "First."},
        {
            "round": 0,
            "seat": "B",
            "kind": "speech",
            "text": "<quote>x</quote>",
            "payload": {"quotes": [{"text": "x", "status": "verified"}]},
        },
    ]
    assert turns["quotes"] == [{"text": "x", "status": "verified", "round": 0, "seat": "B"}]
