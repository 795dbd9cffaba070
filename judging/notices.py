"""The study's notice: "you can judge now" when a participant is seated as a debate's judge, on
their own sockets (which wake the waiting page and the lobby) and by e-mail when they gave an
address. The e-mail and socket primitives, and the "your turn" and "the debate ended" notices, are
debates.notices'; pages show all of them in the tab title and as browser notifications
(static/js/notices.js)."""

from debates import live
from debates.notices import email


def you_can_judge_now(user, experiment_name: str, study_url: str, debate_id: int) -> None:
    live.notify_users([user.pk], {"kind": "seated", "debate": debate_id})
    email(
        user,
        "You can judge now",
        f"A debate in “{experiment_name}” is ready for you to judge.\n\nOpen it here: {study_url}\n",
    )


def waiting_room_changed(user_ids, room_text: str, open_debates: int) -> None:
    """Who waits or which debates wait for a judge changed: open waiting pages show the room at once
    and, when a debate waits for a judge, ask to be seated."""
    live.notify_users(user_ids, {"kind": "room", "room_text": room_text, "open_debates": open_debates})
