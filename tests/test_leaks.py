"""The judge must never learn the hidden material, the correct answer, which side is honest, or
anything a debater marked private. A full debate runs on the live server while everything the
judge receives is captured: every websocket frame and every HTTP response (room page, state and
events API, verdict page, lobby). Then each captured byte is searched for the secrets."""

import json
import re

import pytest

from debates import live, services
from debates.models import Debate, Question
from debates.protocol import Protocol
from judging.models import Verdict
from tests.live_clients import Browser, LiveSocket, session_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PASSAGE_SECRET = "The chief engineer, Marisol Okafor, rewired the oxygen scrubbers on deck nine before dawn."
PASSAGE = (
    "Nobody on the Halcyon trusted the night shift. "
    + PASSAGE_SECRET
    + " When the alarms went off she blamed the storm, but the maintenance log kept her key code."
)
PRIVATE_NOTES = {
    "A": ["NOTE-A1: lead with the log, keep the key code for later", "NOTE-A2: Bob is bluffing about the storm"],
    "B": ["NOTE-B1: the storm story is my cover, avoid the log", "NOTE-B2: claim the log was corrupted"],
}
SEALED_OPENING = "Opening by A (sealed until B is in): the maintenance log names the engineer."
QUOTED = "the maintenance log kept her key code"
# JSON keys that would tell the judge the answer, the honest side or a private note.
FORBIDDEN_KEYS = {
    "correct_answer",
    "correct_index",
    "honest_seats",
    "honest",
    "correct",
    "hidden",
    "hidden_material",
    "hidden_image",
    "private_note",
    "my_answer",
    "score",
}
QUOTE_KEYS = {"text", "status", "round", "seat"}  # a quote's place in the passage stays hidden too


class Capture:
    """Everything the judge receives, in order, with the moment the sealed speeches were revealed."""

    def __init__(self, url, debate_id, session):
        self.debate_id = debate_id
        self.browser = Browser(url, session)
        self.socket = LiveSocket(url, debate_id, session)
        self.socket.wait_for_type("state")

    def look_around(self):
        """What a judge's browser would load: every page and API the judge can reach for this debate."""
        d = self.debate_id
        for path in (
            "/",
            f"/debates/{d}/",
            f"/api/debates/{d}/state/",
            f"/api/debates/{d}/state/?after=0",
            f"/debates/{d}/verdict/",
        ):
            status, body, _ = self.browser.get(path)
            assert status == 200, (path, status, body[:500])

    def wait_until(self, seq):
        self.socket.wait_for_seq(seq)

    def texts(self):
        """(where, text) for every frame and response captured so far."""
        frames = [
            (f"websocket frame {i}", raw if isinstance(raw, str) else raw.decode())
            for i, raw in enumerate(self.socket.raw)
        ]
        return frames + [(f"{method} {path} -> {status}", body) for method, path, status, body in self.browser.bodies]


def json_documents(where, text):
    """The JSON the judge received in this text: the whole of it, or the state embedded in a page."""
    try:
        yield json.loads(text)
        return
    except ValueError:
        pass
    for embedded in re.findall(r'<script[^>]*type="application/json"[^>]*>(.*?)</script>', text, re.DOTALL):
        yield json.loads(embedded)


def walk(value, path="$"):
    """Every (path, key, value) of a JSON document."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield path, key, inner
            yield from walk(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from walk(inner, f"{path}[{i}]")


def assert_nothing_leaks(captured, secrets):
    assert captured, "nothing was captured"
    for where, text in captured:
        for secret in secrets:
            assert secret not in text, f"the judge received {secret!r} in {where}"
        assert "✓ correct" not in text, f"{where} marks the correct answer"
        for document in json_documents(where, text):
            for path, key, value in walk(document):
                assert key not in FORBIDDEN_KEYS, f"{where} has the key {key!r} at {path}"
                if key == "quotes":
                    for quote in value:
                        assert set(quote) <= QUOTE_KEYS, f"{where} tells where a quote sits: {quote} at {path}"


@pytest.fixture
def debate(make_user):
    question = Question.objects.create(
        text="Who caused the blackout on the Halcyon?",
        answers=["The storm", "The chief engineer"],
        correct_index=1,
        hidden_material=PASSAGE,
        public_material="A story set on a research ship.",
    )
    protocol = Protocol(rounds=("simultaneous", "judge_feedback", "sequential"), char_limit=500)
    alice, bob = make_user("alice", "debater"), make_user("bob", "debater")
    # Alice (A) argues the correct answer: she is the honest side.
    return services.create_debate(
        question, protocol, {"A": (alice, 1), "B": (bob, 0)}, judge=make_user("judy", "judge"), seed=3
    )


def test_the_judge_never_receives_hidden_material_the_answer_the_honest_side_or_private_notes(daphne_server, debate):
    users = {p.seat: p.user for p in debate.participants.select_related("user")}
    alice = LiveSocket(daphne_server, debate.pk, session_for(users["A"]))
    bob = LiveSocket(daphne_server, debate.pk, session_for(users["B"]))
    judge = Capture(daphne_server, debate.pk, session_for(users["judge"]))
    judge.look_around()

    live.publish(debate.pk, services.start_debate(debate.pk))
    judge.wait_until(Debate.objects.get(pk=debate.pk).last_seq)
    judge.look_around()

    # Round 1, simultaneous: A's speech is in, B's is not. The judge must not see A's words yet.
    ack = alice.act(
        {
            "type": "speech",
            "text": SEALED_OPENING + f" <quote>{QUOTED}</quote>",
            "private_note": PRIVATE_NOTES["A"][0],
            "client_id": "a-1",
        }
    )
    assert ack["type"] == "ack", ack
    judge.wait_until(Debate.objects.get(pk=debate.pk).last_seq)
    judge.look_around()
    before_reveal = judge.texts()
    assert_nothing_leaks(before_reveal, [SEALED_OPENING, QUOTED])
    # Not even that A's speech is in: speed must not betray the liar.
    assert judge.browser.get_json(f"/api/debates/{debate.pk}/state/")["turns"] == []

    ack = bob.act(
        {
            "type": "speech",
            "text": "Opening by B: the storm knocked out the grid.",
            "private_note": PRIVATE_NOTES["B"][0],
            "client_id": "b-1",
        }
    )
    assert ack["type"] == "ack", ack
    revealed = judge.socket.wait_for_event("speeches_revealed")
    assert SEALED_OPENING in revealed["data"]["speeches"][0]["text"]  # now everybody may read it
    judge.look_around()

    ack = judge.socket.act(
        {"type": "feedback", "probabilities": [0.5, 0.5], "comment": "Quote the log, both of you.", "client_id": "j-1"}
    )
    assert ack["type"] == "ack", ack
    for socket, seat, text in (
        (alice, "A", "A again: the log is signed with her key code."),
        (bob, "B", "B again: the log was corrupted by the surge."),
    ):
        ack = socket.act(
            {"type": "speech", "text": text, "private_note": PRIVATE_NOTES[seat][1], "client_id": f"{seat}-2"}
        )
        assert ack["type"] == "ack", ack
    judge.socket.wait_for_event("debate_finished")
    judge.wait_until(Debate.objects.get(pk=debate.pk).last_seq)
    judge.look_around()

    status, _, _ = judge.browser.post(
        f"/debates/{debate.pk}/verdict/",
        form={"p0": "35", "p1": "65", "reason": "B never quoted anything.", "seconds_spent": "80", "client_id": "v-1"},
    )
    assert status == 302
    assert Verdict.objects.filter(debate=debate).count() == 1
    judge.socket.wait_for_event("verdict_given")
    judge.look_around()
    status, _, _ = judge.browser.get(f"/debates/{debate.pk}/verdict/?show=all")
    assert status == 200

    # Debaters do receive these, so the capture would catch them if they reached the judge.
    for socket, seat in ((alice, "A"), (bob, "B")):
        socket.drain()
        state = Browser(daphne_server, session_for(users[seat])).get_json(f"/api/debates/{debate.pk}/state/")
        assert PASSAGE in json.dumps(state)
        assert [t["private_note"] for t in state["turns"] if "private_note" in t] == PRIVATE_NOTES[seat]
        socket.close()

    everything = judge.texts()
    assert len(everything) > 40
    secrets = [PASSAGE, PASSAGE_SECRET, *PRIVATE_NOTES["A"], *PRIVATE_NOTES["B"]]
    assert_nothing_leaks(everything, secrets)
    judge.socket.close()


def test_the_leak_check_catches_what_an_observer_legitimately_sees(daphne_server, debate, make_user):
    """The same checks on an observer's view must fail: they are able to see a leak."""
    researcher = make_user("rita", "researcher")
    debate.created_by = researcher
    debate.save(update_fields=["created_by"])
    observer = Capture(daphne_server, debate.pk, session_for(researcher))
    observer.look_around = lambda: observer.browser.get(f"/api/debates/{debate.pk}/state/")
    observer.look_around()
    with pytest.raises(AssertionError, match="Marisol Okafor"):
        assert_nothing_leaks(observer.texts(), [PASSAGE_SECRET])
    with pytest.raises(AssertionError, match="correct_answer|hidden|honest_seats"):
        assert_nothing_leaks(observer.texts(), [])
    observer.socket.close()


def test_the_judge_never_learns_who_handed_in_a_simultaneous_speech_first(daphne_server, make_user):
    question = Question.objects.create(
        text="Who rewired the scrubbers?", answers=["Marisol", "The storm"], correct_index=0, hidden_material=PASSAGE
    )
    alice, bob, judy = make_user("sa1", "debater"), make_user("sb1", "debater"), make_user("sj1", "judge")
    debate = services.create_debate(
        question, Protocol(rounds=("simultaneous", "judge_feedback")), {"A": (alice, 0), "B": (bob, 1)}, judge=judy
    )
    live.publish(debate.pk, services.start_debate(debate.pk))
    judge = Capture(daphne_server, debate.pk, session_for(judy))
    _, events = services.submit_action(debate.pk, alice, kind="speech", text="A writes fast.")
    live.publish(debate.pk, events)
    judge.wait_until(Debate.objects.get(pk=debate.pk).last_seq)
    judge.look_around()
    for where, text in judge.texts():
        for document in json_documents(where, text):
            assert "speech_sealed" not in list(_values_of(document, "kind")), where
            for waiting in _values_of(document, "waiting_for"):
                assert waiting in ([], ["A", "B"], ["judge"]), (where, waiting)
            assert not any(t.get("sealed") or t.get("seat") == "A" for t in document.get("turns", [])), where
    _, events = services.submit_action(debate.pk, bob, kind="speech", text="B writes slowly.")
    live.publish(debate.pk, events)
    judge.wait_until(Debate.objects.get(pk=debate.pk).last_seq)
    state = judge.browser.get_json(f"/api/debates/{debate.pk}/state/")
    speeches = [t for t in state["turns"] if t["kind"] == "speech"]
    assert [t["seat"] for t in speeches] and all("at" not in t for t in speeches)
    judge.socket.close()


def _values_of(document, key):
    if isinstance(document, dict):
        for k, v in document.items():
            if k == key:
                yield v
            else:
                yield from _values_of(v, key)
    elif isinstance(document, list):
        for item in document:
            yield from _values_of(item, key)


def test_after_a_simultaneous_round_the_speeches_read_in_speaking_order(make_user):
    question = Question.objects.create(text="Who?", answers=["x", "y"], correct_index=0, hidden_material=PASSAGE)
    alice, bob, judy = make_user("ro1", "debater"), make_user("ro2", "debater"), make_user("ro3", "judge")
    debate = services.create_debate(
        question, Protocol(rounds=("simultaneous", "judge_feedback")), {"A": (alice, 0), "B": (bob, 1)}, judge=judy
    )
    services.start_debate(debate.pk)
    services.submit_action(debate.pk, bob, kind="speech", text="B was faster.")
    services.submit_action(debate.pk, alice, kind="speech", text="A took longer.")
    debate.refresh_from_db()
    from debates import snapshots

    state = snapshots.state_for(debate, snapshots.viewer_for(debate, judy))
    assert [t["seat"] for t in state["turns"]] == ["A", "B"]


# AI debates, blinded experiments and streams (issue 10). AI turns are played by a real Celery
# worker; the model API of the "fake-local" back-end is tests/fake_llm_server.py (a TEST DOUBLE).
AI_KEYS = {"ai", "agent", "agent_error", "identity", "candidates", "chosen", "backend", "model"}
AI_WORDS = ["(AI)", "ai_turn", "ai_token", "ai-0-", "ai-2-", "offline", "scripted", "fake-local", "is writing"]


def _experiment_debate(owner, judge, question, protocol, blinding, agents):
    """A debate of an experiment version with these blinding rules, its seats played by agents."""
    from debates.experiments import load_experiment

    text = (
        f"name: Leaks {blinding['aliases']}\ndataset: {{source: leaks}}\nprotocols: [{{name: p}}]\n"
        f"debaters: {{kind: ai, backend: scripted}}\n"
        f"blinding: {{aliases: {str(blinding['aliases']).lower()}, reveal_after_verdict: false}}\n"
    )
    version, _ = load_experiment(text, owner)
    debate = services.create_debate(
        question, protocol, {"A": (None, 1), "B": (None, 0)}, judge=judge, answer_order=[0, 1], created_by=owner
    )
    debate.experiment_version = version
    debate.save(update_fields=["experiment_version"])
    for seat, agent in agents.items():
        debate.participants.filter(seat=seat).update(
            agent=agent, alias=f"Debater {seat}" if blinding["aliases"] else ""
        )
    return debate


def _play_ai_debate(daphne_server, debate, judge):
    """The judge watches from before the start to the verdict, as a browser would."""
    capture = Capture(daphne_server, debate.pk, session_for(judge))
    capture.look_around()
    live.publish(debate.pk, services.start_debate(debate.pk))
    capture.socket.wait_for_event("speeches_revealed", timeout=60)
    capture.look_around()
    ack = capture.socket.act({"type": "feedback", "probabilities": [0.5, 0.5], "comment": "Go on.", "client_id": "j"})
    assert ack["type"] == "ack", ack
    capture.socket.wait_for_event("debate_finished", timeout=60)
    capture.wait_until(Debate.objects.get(pk=debate.pk).last_seq)
    capture.look_around()
    status, _, _ = capture.browser.post(
        f"/debates/{debate.pk}/verdict/",
        form={"p0": "35", "p1": "65", "reason": "The log decides it.", "client_id": "v"},
    )
    assert status == 302
    capture.socket.wait_for_event("verdict_given")
    capture.look_around()
    capture.socket.drain()
    return capture


def test_a_blinded_judge_cannot_tell_an_ai_seat_from_a_person(daphne_server, celery_worker, make_user):
    """One seat is an AI, one a person: nothing the judge receives says which (no AI frames, keys
    or words), and nothing hidden reaches the judge either."""
    question = Question.objects.create(
        text="Who caused the blackout on the Halcyon?",
        answers=["The storm", "The chief engineer"],
        correct_index=1,
        hidden_material=PASSAGE,
        public_material="A story set on a research ship.",
    )
    judy, rita, bob = make_user("judy", "judge"), make_user("rita", "researcher"), make_user("bob", "debater")
    protocol = Protocol(
        rounds=("simultaneous", "judge_feedback", "sequential"), char_limit=300, speaking_order=("A", "B")
    )
    debate = _experiment_debate(
        rita, judy, question, protocol, {"aliases": True}, {"A": {"backend": "scripted", "token_delay": 0.01}}
    )
    debate.participants.filter(seat="B").update(user=bob, alias="Debater B")
    bob_socket = LiveSocket(daphne_server, debate.pk, session_for(bob))
    bob_socket.wait_for_type("state")

    import threading

    def bob_speaks():  # the person answers whenever it is their turn
        for round_index, text in ((0, "B: the storm did it."), (2, "B: the storm, again.")):
            bob_socket.wait_for(
                lambda f, r=round_index: (
                    f.get("type") == "event"
                    and f["kind"] == "turn_state"
                    and f["data"].get("round") == r
                    and "B" in f["data"].get("waiting_for", [])
                ),
                timeout=60,
            )
            bob_socket.act({"type": "speech", "text": text, "client_id": f"b{round_index}"})

    speaker = threading.Thread(target=bob_speaks, daemon=True)
    speaker.start()
    capture = _play_ai_debate(daphne_server, debate, judy)
    speaker.join(timeout=60)
    texts = capture.texts()
    assert_nothing_leaks(texts, [PASSAGE, *AI_WORDS])  # quotes from the passage are fine, the passage is not
    for where, text in texts:
        for document in json_documents(where, text):
            for path, key, _ in walk(document):
                assert key not in AI_KEYS, f"{where} has the key {key!r} at {path}: it tells which seat is an AI"
    frame_types = {json.loads(raw)["type"] for raw in capture.socket.raw}
    assert frame_types <= {"state", "event", "presence", "ack", "pong", "error"}, frame_types
    # Presence tells nothing either: the AI seat is online whenever the person is.
    frames = [json.loads(raw) for raw in capture.socket.raw]
    for frame in frames:
        if frame["type"] == "presence":
            assert "A" in frame["seats"], frame
        if frame["type"] == "state":
            assert all(seat["online"] for seat in frame["seats"] if seat["seat"] == "A"), frame["seats"]
    assert any(f["type"] == "presence" and {"A", "B"} <= set(f["seats"]) for f in frames)
    bob_socket.close()


def test_streams_carry_only_what_is_stored_and_nothing_of_a_sealed_round(daphne_server, celery_worker, make_user):
    """An experiment without aliases: the judge may know the seats are AIs and watch them write,
    but a sealed round streams nothing to the judge, and a model that writes far past the
    character limit streams exactly the stored, cut speech (the finding: 265 characters streamed
    for a 100-character limit)."""
    import os

    from tests.fake_llm_server import FakeLLMServer, Reply

    question = Question.objects.create(
        text="Who caused the blackout on the Halcyon?",
        answers=["The storm", "The chief engineer"],
        correct_index=1,
        hidden_material=PASSAGE,
        public_material="A story set on a research ship.",
    )
    judy, rita = make_user("judy", "judge"), make_user("rita", "researcher")
    protocol = Protocol(
        rounds=("simultaneous", "judge_feedback", "sequential"), char_limit=100, speaking_order=("A", "B")
    )
    model = {"backend": "fake-local", "model": "m", "parameters": {"retry_base_delay": 0.01}}
    debate = _experiment_debate(rita, judy, question, protocol, {"aliases": False}, {"A": model, "B": model})
    long_speech = "the log names the engineer and her key code. " * 3 + "PAST-THE-LIMIT " * 10  # cut at 100
    server = FakeLLMServer(port=int(os.environ["FAKE_LOCAL_LLM_PORT"])).start()
    try:
        server.script([], default=Reply(long_speech, chunk=5))
        capture = _play_ai_debate(daphne_server, debate, judy)
    finally:
        server.stop()
    frames = [json.loads(raw) for raw in capture.socket.raw]
    speeches = {(t.round_index, t.seat): t.text for t in Debate.objects.get(pk=debate.pk).turns.filter(kind="speech")}
    assert set(speeches) == {(0, "A"), (0, "B"), (2, "A"), (2, "B")}
    assert not [f for f in frames if f["type"].startswith("ai_") and f.get("round") == 0]  # sealed: nothing at all
    for seat in ("A", "B"):
        streamed = "".join(
            f["delta"] for f in frames if f["type"] == "ai_token" and f["seat"] == seat and f["round"] == 2
        )
        assert streamed == speeches[(2, seat)] and len(streamed) <= 100
        assert max(f["chars"] for f in frames if f["type"] == "ai_token" and f["seat"] == seat) <= 100
    assert_nothing_leaks(capture.texts(), [PASSAGE, "PAST-THE-LIMIT"])
