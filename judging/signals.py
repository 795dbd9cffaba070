"""judging listens to debates (debates never imports judging): when an experiment's debate
finishes, its offline judging assignments are made (judging.offline)."""
from . import offline


def assign_offline_judges(sender, debate_id: int, **kwargs):
    """debates.signals.debate_finished receiver (sent after the commit)."""
    offline.assign_offline_judges(debate_id)
