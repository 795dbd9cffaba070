"""judging listens to debates (debates never imports judging): when an experiment's debate
finishes, its offline judging assignments are made (judging.offline); when an image debate
finishes, the pixel judge's verdict is scheduled (judging.tasks)."""
from debates.models import Debate

from . import offline, tasks


def assign_offline_judges(sender, debate_id: int, **kwargs):
    """debates.signals.debate_finished receiver (sent after the commit)."""
    offline.assign_offline_judges(debate_id)


def give_pixel_verdict(sender, debate_id: int, **kwargs):
    """debates.signals.debate_finished receiver: image debates get the pixel judge's verdict."""
    is_image = Debate.objects.filter(pk=debate_id, question__kind="image", protocol__evidence="pixels").exists()
    if is_image:
        tasks.schedule_pixel_verdict(debate_id)
