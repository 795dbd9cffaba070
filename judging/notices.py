"""E-mail notices to people who gave an address (the console back-end prints them unless
EMAIL_BACKEND names another). Pages give the same notices in the tab title and as browser
notifications (static/js/notices.js)."""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

log = logging.getLogger(__name__)


def email(user, subject: str, body: str) -> None:
    """Sent after the transaction commits, so nobody is told of a seat that was rolled back; a mail
    server that fails is logged and never breaks the page."""
    if not getattr(user, "email", ""):
        return

    def send():
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
        except Exception:  # noqa: BLE001 - any mail failure is only logged
            log.exception("could not e-mail %s", user.get_username())

    transaction.on_commit(send)


def you_can_judge_now(user, experiment_name: str, study_url: str) -> None:
    email(
        user,
        "You can judge now",
        f"A debate in “{experiment_name}” is ready for you to judge.\n\nOpen it here: {study_url}\n",
    )
