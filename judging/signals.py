"""judging listens to debates (debates never imports judging): when an experiment's debate
finishes, its offline judging assignments are made (judging.offline); when an image debate
finishes, the pixel judge's verdict is scheduled (judging.tasks); a seated AI judge gives its
feedback when a judge feedback round waits for it and its verdict when the debate ends."""

from debates.models import Debate, Participant
from debates.protocol import JUDGE

from . import offline, tasks


def assign_offline_judges(sender, debate_id: int, **kwargs):
    """debates.signals.debate_finished receiver (sent after the commit)."""
    offline.assign_offline_judges(debate_id)


def ai_judge_turn(sender, debate_id: int, expected_round: int, **kwargs):
    """debates.signals.ai_judge_expected receiver (sent after the commit)."""
    tasks.ai_judge_feedback.dispatch(debate_id, expected_round)


def ai_judge_verdict(sender, debate_id: int, **kwargs):
    """debates.signals.debate_finished receiver: a debate with a seated AI judge gets its verdict."""
    seated = Participant.objects.filter(debate_id=debate_id, seat=JUDGE, agent__isnull=False).exists()
    if seated and Debate.objects.filter(pk=debate_id, status=Debate.AWAITING_VERDICT).exists():
        tasks.ai_judge_verdict.dispatch(debate_id)


def give_pixel_verdict(sender, debate_id: int, **kwargs):
    """debates.signals.debate_finished receiver: image debates get the pixel judge's verdict."""
    is_image = Debate.objects.filter(pk=debate_id, question__kind="image", protocol__evidence="pixels").exists()
    if is_image:
        tasks.pixel_verdict.dispatch(debate_id)
