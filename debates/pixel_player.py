"""Playing a tree search seat's turn in a live image debate.

The game is rebuilt from the debate (the image, both claims, who moves first, the reveals so
far), the search picks a pixel (debates.pixel.mcts, the same search as self-play) and the move
goes through services.submit_agent_turn like any other turn. Each move is searched afresh from
the current position with seed `agent seed + 7919 * ply`, so a move depends only on the position,
whoever made the earlier moves (a person or a search).

Called by the Celery task debates.tasks.play_pixel_turn (a timer thread in the embedded default),
`move_delay` seconds after the turn starts, so people can watch the moves come in.
"""

import logging
import time

import numpy as np

from . import background, live, pixel_debates, services
from .models import Debate
from .pixel.game import DebateSetup, GameError
from .pixel.mcts import SearchConfig
from .pixel.selfplay import choose_move
from .protocol import Refused

log = logging.getLogger(__name__)
TOO_LATE = ("wrong_round", "debate_over", "not_your_turn", "not_started")
PLY_SEED_STRIDE = 7919


def client_id_for(round_index: int, seat: str) -> str:
    return f"pixel-{round_index}-{seat}"


def move_delay_of(debate_id: int, seat: str) -> float | None:
    """The seat's move delay in seconds if it is a tree search seat, else None."""
    from .models import Participant

    agent = Participant.objects.filter(debate_id=debate_id, seat=seat).values_list("agent", flat=True).first()
    if not pixel_debates.is_pixel_agent(agent):
        return None
    delay = agent.get("move_delay", pixel_debates.PixelAgent.move_delay)
    return float(delay) if isinstance(delay, (int, float)) and not isinstance(delay, bool) and delay >= 0 else 0.0


def game_setup(debate: Debate) -> tuple[DebateSetup, dict]:
    """The pure game of an image debate and {seat: "honest" | "liar"}."""
    question = debate.question
    debaters = {p.seat: p.answer_index for p in debate.participants.all() if p.is_debater}
    honest = [seat for seat, answer in debaters.items() if answer == question.correct_index]
    if len(debaters) != 2 or len(honest) != 1:
        raise GameError("a pixel debate has two debaters, one of them arguing for the true digit")
    liar = next(seat for seat in debaters if seat != honest[0])
    protocol = debate.get_protocol()
    precommit = len(question.answers) == 2
    setup = DebateSetup(
        np.asarray(question.hidden_image, dtype=np.uint8),
        pixel_debates.digit_of(question, question.correct_index),
        pixel_debates.digit_of(question, debaters[liar]) if precommit else None,
        pixels=protocol.reveals_per_debater * 2,
        honest_first=protocol.order[0] == honest[0],
        precommit=precommit,
    )
    return setup, {honest[0]: "honest", liar: "liar"}


def choose_pixel(
    setup: DebateSetup, revealed: list[int], agent: pixel_debates.PixelAgent, evaluator
) -> tuple[int, dict]:
    """The search's move from the position after `revealed`, and figures about the search."""
    config = SearchConfig(rollouts=agent.rollouts, leaf=agent.leaf, value=agent.value)
    seed = agent.seed + PLY_SEED_STRIDE * len(revealed)
    started = time.perf_counter()
    pixel = choose_move(setup, revealed, evaluator, config, seed)
    return pixel, {
        "backend": pixel_debates.PIXEL_BACKEND,
        "rollouts": agent.rollouts,
        "seed": seed,
        "seconds": round(time.perf_counter() - started, 3),
    }


def play_turn(debate_id: int, seat: str, expected_round: int) -> str:
    """Plays the seat's move if it is still expected in `expected_round`; otherwise does nothing.
    Returns what happened. A seat that cannot play (bad settings, no judge) forfeits the turn."""
    debate = Debate.objects.select_related("question").filter(pk=debate_id).first()
    if debate is None:
        return "no_such_debate"
    participant = debate.participants.filter(seat=seat).first()
    if participant is None or not pixel_debates.is_pixel_agent(participant.agent):
        return "not_a_pixel_seat"
    client_id = client_id_for(expected_round, seat)
    if debate.turns.filter(seat=seat, client_id=client_id).exists():
        return "already_played"
    engine = debate.engine()
    if debate.status != Debate.LIVE or engine.round_index != expected_round or seat not in engine.expected_seats():
        return "not_expected"
    try:
        agent = pixel_debates.PixelAgent.from_dict(participant.agent)
        setup, _ = game_setup(debate)
    except (ValueError, GameError) as error:
        return give_up(debate_id, seat, expected_round, "bad_agent_config", str(error))
    try:
        evaluator = pixel_debates.judge_evaluator(agent.pixels)
    except pixel_debates.JudgeMissing as error:
        return give_up(debate_id, seat, expected_round, "judge_missing", str(error))
    except (OSError, RuntimeError, KeyError) as error:  # a damaged or foreign weights file
        return give_up(debate_id, seat, expected_round, "judge_unreadable", f"the judge could not be loaded: {error}")
    pixel, figures = choose_pixel(setup, list(engine.revealed), agent, evaluator)
    try:
        _, events = services.submit_agent_turn(
            debate_id,
            seat,
            text=pixel_debates.reveal_text(pixel),
            expected_round=expected_round,
            client_id=client_id,
            payload={"agent": figures},
            reveal=pixel,
        )
    except Refused as refused:
        if refused.code in TOO_LATE:
            return "too_late"
        return give_up(debate_id, seat, expected_round, refused.code, refused.message)
    live.publish(debate_id, events)
    return "played"


def give_up(debate_id: int, seat: str, expected_round: int, code: str, message: str) -> str:
    """The seat forfeits the turn (recorded as timed out, with the reason) so the debate goes on."""
    log.warning("pixel debater failed: debate %s seat %s round %s: %s", debate_id, seat, expected_round, message)
    events = services.forfeit_agent_turn(
        debate_id,
        seat,
        expected_round=expected_round,
        client_id=client_id_for(expected_round, seat),
        code=code,
        message=message,
    )
    live.publish(debate_id, events)
    return f"failed: {code}"


def waiting_pixel_seats(debate: Debate) -> list[tuple[str, int]]:
    """(seat, round) of tree search seats the live debate is waiting for now."""
    if debate.status != Debate.LIVE:
        return []
    engine = debate.engine()
    expected = set(engine.expected_seats())
    return [
        (p.seat, engine.round_index)
        for p in debate.participants.filter(seat__in=expected)
        if pixel_debates.is_pixel_agent(p.agent)
    ]


def on_room_opened(debate: Debate, viewer) -> bool:
    """An image debate's room was opened: a debate marked start_when_judge_opens starts when its
    judge arrives, and a tree search move that was lost (a restarted server) is scheduled again.
    Returns whether the debate changed."""
    if debate.question.kind != debate.question.KIND_IMAGE:
        return False
    events = pixel_debates.start_when_judge_opens(debate, viewer)
    live.publish(debate.pk, events)
    if not events:
        for seat, round_index in waiting_pixel_seats(debate):
            delay = move_delay_of(debate.pk, seat) or 0.0
            background.dispatch(
                "debates.tasks.play_pixel_turn", debate.pk, seat, round_index, countdown=delay, only_once=True
            )
    return bool(events)
