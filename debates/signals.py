"""Signals the debates app sends. Other apps listen (judging connects its receivers in its
AppConfig.ready()); debates never imports them.

debate_finished: sent once, after the commit, when a debate's last turn ends it (all rounds done
or the judge ended it). Arguments: debate_id.

ai_judge_expected: sent after the commit when a debate's judge seat is held by an AI judge and a
judge feedback round now waits for it (judging plays AI judges). Arguments: debate_id,
expected_round.
"""

import logging

from django.dispatch import Signal

log = logging.getLogger(__name__)
debate_finished = Signal()
ai_judge_expected = Signal()


def announce_finished(debate_model, debate_id: int) -> None:
    """Sends debate_finished; a failing receiver is logged and never undoes or blocks the debate."""
    for receiver, result in debate_finished.send_robust(sender=debate_model, debate_id=debate_id):
        if isinstance(result, Exception):
            log.error("debate_finished receiver %r failed for debate %s: %r", receiver, debate_id, result)


def announce_ai_judge_expected(debate_model, debate_id: int, expected_round: int) -> None:
    """Sends ai_judge_expected; a failing receiver is logged (the judge's turn then waits)."""
    for receiver, result in ai_judge_expected.send_robust(
        sender=debate_model, debate_id=debate_id, expected_round=expected_round
    ):
        if isinstance(result, Exception):
            log.error("ai_judge_expected receiver %r failed for debate %s: %r", receiver, debate_id, result)
