"""Each protocol end to end through a real daphne server and real websocket clients (signed in with
session cookies, Origin from ALLOWED_HOSTS): debate (simultaneous and sequential rounds, judge
feedback, a judge-ended debate with the per-turn penalty in the judge's score), consultancy (one
consultant, on the correct answer in half the debates, questioned by the judge), direct judging
(no debaters: the judge answers from public material alone) and interactive debate (the judge's
question reaches the debaters, who answer it in the next round). Debates come from experiment
files, as researchers make them."""

import math

import pytest

from debates.experiments import load_experiment, start_experiment
from debates.models import Debate, Question
from judging.models import Verdict
from tests.live_clients import Browser, LiveSocket, session_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PASSAGE = "SECRET-LIGHT: the keeper lit the lamp at dusk and the ship came home safely."
EXPERIMENT = """
name: Protocols {name}
dataset:
  source: live-protocols
  limit: {limit}
protocols:
  - name: {name}
    format: {format}
    rounds: {rounds}
    turn_penalty: {penalty}
debaters:
  kind: human
  pool: [deb1, deb2, deb3, deb4]
judges:
  kind: human
  pool: [judge1, judge2, judge3, judge4]
counterbalance:
  seed: {seed}
"""


@pytest.fixture
def people(make_user):
    users = {name: make_user(name, "debater") for name in ("deb1", "deb2", "deb3", "deb4")}
    users.update({name: make_user(name, "judge") for name in ("judge1", "judge2", "judge3", "judge4")})
    users["rita"] = make_user("rita", "researcher")
    for i in range(4):
        Question.objects.create(
            text=f"Did the ship {i} come home?",
            answers=["Yes, safely", "No, it sank"],
            correct_index=i % 2,
            hidden_material=PASSAGE,
            public_material=f"Public note {i}.",
            source="live-protocols",
            external_id=str(i),
        )
    return users


def experiment(people, name, fmt, rounds, limit=1, penalty=0.0, seed=1):
    text = EXPERIMENT.format(name=name, format=fmt, rounds=rounds, limit=limit, penalty=penalty, seed=seed)
    version, _ = load_experiment(text, people["rita"])
    return [Debate.objects.get(pk=d.pk) for d in start_experiment(version.pk)]


class Seats:
    """Real websockets for everyone seated in a debate, each signed in with its own session."""

    def __init__(self, url, debate):
        self.url, self.debate = url, debate
        self.users = {p.seat: p.user for p in debate.participants.select_related("user") if p.user}
        self.sessions = {seat: session_for(user) for seat, user in self.users.items()}
        self.sockets = {seat: LiveSocket(url, debate.pk, session) for seat, session in self.sessions.items()}
        self.states = {seat: socket.wait_for_type("state") for seat, socket in self.sockets.items()}

    def __getitem__(self, seat):
        return self.sockets[seat]

    def act(self, seat, message):
        answer = self.sockets[seat].act(dict(message, client_id=f"{seat}-{len(self.sockets[seat].frames)}"))
        assert answer["type"] == "ack", answer
        return answer

    def speak(self, seat, text):
        return self.act(seat, {"type": "speech", "text": text})

    def feedback(self, shown, comment="", end=False):
        return self.act("judge", {"type": "feedback", "probabilities": shown, "comment": comment, "end_debate": end})

    def catch_up(self):
        last = Debate.objects.get(pk=self.debate.pk).last_seq
        for socket in self.sockets.values():
            socket.wait_for_seq(last)

    def fresh_state(self, seat):
        """A new connection's full state (what a reload shows)."""
        socket = LiveSocket(self.url, self.debate.pk, self.sessions[seat])
        state = socket.wait_for_type("state")
        socket.close()
        return state

    def verdict(self, shown_percents, reason):
        form = {f"p{i}": str(p) for i, p in enumerate(shown_percents)}
        status, body, _ = Browser(self.url, self.sessions["judge"]).post(
            f"/debates/{self.debate.pk}/verdict/", form=dict(form, reason=reason, client_id="verdict-1")
        )
        assert status == 302, body[:800]
        return Verdict.objects.get(debate=self.debate, judge=self.users["judge"])

    def close(self):
        for socket in self.sockets.values():
            socket.close()


def everything_sent_to(socket) -> str:
    return "\n".join(socket.raw)


def shown_order(debate):
    return Debate.objects.get(pk=debate.pk).shown_answer_order()


# Debate ---------------------------------------------------------------------------------------------


def test_a_debate_with_sealed_simultaneous_speeches_sequential_turns_and_a_judge_who_ends_it_early(
    daphne_server, people
):
    [debate] = experiment(
        people,
        "debate",
        "debate",
        "[simultaneous, judge_feedback, sequential, judge_feedback, sequential, judge_feedback]",
        penalty=0.1,
    )
    seats = Seats(daphne_server, debate)
    assert debate.status == Debate.LIVE and seats.states["judge"]["format"] == "debate"
    first, second = debate.get_protocol().order

    # Simultaneous: the first speech stays sealed for everyone else until the second is in, and
    # the judge is not even told who was first (speed must not betray the liar).
    seats.speak("A", "A opens: the lamp was lit.")
    assert seats["B"].wait_for_event("speech_sealed")["data"] == {"seat": "A", "round": 0}
    seats.catch_up()
    assert "speech_sealed" not in everything_sent_to(seats["judge"])
    assert "the lamp was lit" not in everything_sent_to(seats["judge"]) + everything_sent_to(seats["B"])
    seats.speak("B", "B opens: the sea was wild.")
    revealed = seats["judge"].wait_for_event("speeches_revealed")["data"]["speeches"]
    assert [(s["seat"], s["text"]) for s in revealed] == [
        (s, {"A": "A opens: the lamp was lit.", "B": "B opens: the sea was wild."}[s]) for s in (first, second)
    ]

    # Judge feedback, then a sequential round in the counterbalanced speaking order.
    seats.feedback([0.5, 0.5], comment="Quote the passage, both of you.")
    assert seats[first].wait_for(lambda f: f.get("kind") == "round_started" and f["data"]["round"] == 2)["data"] == {
        "round": 2,
        "kind": "sequential",
    }
    refused = seats[second].act({"type": "speech", "text": "Me first!", "client_id": "early"})
    assert refused["type"] == "error" and refused["code"] == "not_your_turn"
    seats.speak(first, f"{first} quotes the lamp.")
    seats.speak(second, f"{second} quotes the storm.")

    # The judge has heard enough: ends the debate in the next feedback round.
    seats.feedback([0.8, 0.2], comment="", end=True)
    for socket in seats.sockets.values():
        assert socket.wait_for_event("debate_finished")["data"] == {"reason": "judge_ended"}
    assert Debate.objects.get(pk=debate.pk).status == Debate.AWAITING_VERDICT
    late = seats[first].act({"type": "speech", "text": "One more thing.", "client_id": "late"})
    assert late["type"] == "error" and late["code"] == "debate_over"

    verdict = seats.verdict([80, 20], "The lamp quotes held up.")
    canonical = [0.0, 0.0]
    for position, answer in enumerate(shown_order(debate)):
        canonical[answer] = [0.8, 0.2][position]
    p_correct = canonical[debate.question.correct_index]
    assert verdict.live and verdict.after_turn == 6
    assert verdict.score == pytest.approx(math.log2(p_correct) - 0.1 * 4)  # four debater turns seen
    for socket in seats.sockets.values():
        assert socket.wait_for_event("verdict_given")
    seats.close()


# Consultancy ----------------------------------------------------------------------------------------


def test_consultancy_puts_the_consultant_on_the_correct_answer_in_half_the_debates(people):
    debates = experiment(people, "consultancy-balance", "consultancy", "[sequential, judge_feedback]", limit=4)
    assert len(debates) == 4
    honest = [d.participants.get(seat="A").answer_index == d.question.correct_index for d in debates]
    assert sum(honest) == 2
    assert all(d.participants.filter(seat="B").count() == 0 for d in debates)
    assert [d.provenance["honest_seats"] == ["A"] for d in debates] == honest


def test_a_consultancy_judge_questions_the_consultant_between_rounds(daphne_server, people):
    [debate] = experiment(
        people, "consultancy", "consultancy", "[sequential, judge_feedback, sequential, judge_feedback]"
    )
    seats = Seats(daphne_server, debate)
    assert sorted(seats.sockets) == ["A", "judge"]
    assert [s["seat"] for s in seats.states["judge"]["seats"]] == ["A", "judge"]
    assert seats.states["A"]["format"] == "consultancy" and seats.states["A"]["judge_question"] is None

    seats.speak("A", "The keeper lit the lamp; my answer is right.")
    seats.feedback([0.5, 0.5], comment="Which line of the story shows the ship came home?")
    feedback = seats["A"].wait_for_event("feedback")["data"]
    assert feedback["comment"] == "Which line of the story shows the ship came home?"
    seats["A"].wait_for_event("turn_state")
    state = seats.fresh_state("A")
    assert state["judge_question"] == {"round": 1, "text": "Which line of the story shows the ship came home?"}
    assert state["waiting_for"] == ["A"]
    room = Browser(daphne_server, seats.sessions["A"]).get(f"/debates/{debate.pk}/")[1]
    assert "The judge asks:" in room and "Which line of the story shows the ship came home?" in room

    seats.speak("A", "The last line: the ship came home safely.")
    seats.feedback([0.7, 0.3], comment="Thanks.")
    assert seats["judge"].wait_for_event("debate_finished")["data"] == {"reason": "all_rounds_done"}
    verdict = seats.verdict([70, 30], "The consultant quoted the ending.")
    assert verdict.after_turn == 4 and "SECRET-LIGHT" not in everything_sent_to(seats["judge"])
    seats.close()


# Direct judging -------------------------------------------------------------------------------------


def test_direct_judging_has_no_debaters_and_the_judge_answers_from_public_material(daphne_server, people):
    [debate] = experiment(people, "direct", "direct", "[judge_feedback]")
    assert debate.status == Debate.LIVE
    assert not debate.participants.filter(user__isnull=False).exclude(seat="judge").exists()
    seats = Seats(daphne_server, debate)
    state = seats.states["judge"]
    assert sorted(seats.sockets) == ["judge"]
    assert state["format"] == "direct" and state["waiting_for"] == ["judge"]
    assert [s["seat"] for s in state["seats"]] == ["judge"]  # nobody argues for any answer
    assert state["question"]["public_material"].startswith("Public note")
    assert "hidden" not in state and "SECRET-LIGHT" not in everything_sent_to(seats["judge"])

    seats.feedback([0.4, 0.6], comment="A guess from the public note.")
    assert seats["judge"].wait_for_event("debate_finished")["data"] == {"reason": "all_rounds_done"}
    verdict = seats.verdict([40, 60], "Only the public note to go on.")
    assert verdict.after_turn == 1 and Debate.objects.get(pk=debate.pk).status == Debate.COMPLETE
    seats.close()


# Interactive debate ---------------------------------------------------------------------------------


def test_interactive_debaters_see_the_judges_question_and_answer_it_in_the_next_round(daphne_server, people):
    [debate] = experiment(
        people, "interactive", "interactive", "[simultaneous, judge_feedback, sequential, judge_feedback]"
    )
    seats = Seats(daphne_server, debate)
    assert seats.states["A"]["format"] == "interactive"
    seats.speak("A", "Opening for A.")
    seats.speak("B", "Opening for B.")
    seats["judge"].wait_for_event("speeches_revealed")
    question = "What time was the lamp lit? Quote it."
    seats.feedback([0.5, 0.5], comment=question)
    seats.catch_up()
    for seat in ("A", "B"):
        state = seats.fresh_state(seat)
        assert state["judge_question"] == {"round": 1, "text": question}
        room = Browser(daphne_server, seats.sessions[seat]).get(f"/debates/{debate.pk}/")[1]
        assert "Answer the judge's question:" in room and question in room
    first, second = debate.get_protocol().order
    seats.speak(first, "At dusk, says the story.")
    seats.speak(second, "The story never says when.")
    seats.feedback([0.6, 0.4], comment="")
    assert seats["judge"].wait_for_event("debate_finished")
    turns = list(Debate.objects.get(pk=debate.pk).turns.values_list("round_index", "seat", "text"))
    assert turns[2] == (1, "judge", question)
    assert [t[1] for t in turns[3:5]] == [first, second]  # the answers come in the round after the question
    assert seats.fresh_state("A")["judge_question"] is None  # the last feedback asked nothing
    seats.close()


def test_a_debater_cannot_reach_another_debate_of_the_experiment(daphne_server, people):
    debates = experiment(people, "isolation", "debate", "[sequential]", limit=2)
    outsider = next(
        p.user
        for p in debates[1].participants.select_related("user")
        if p.user and not debates[0].participants.filter(user=p.user).exists()
    )
    socket = LiveSocket(daphne_server, debates[0].pk, session_for(outsider))
    assert socket.close_code() == 4403
