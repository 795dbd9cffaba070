"""Make an API token for a user; the key is printed once and only its hash is kept."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from judging.models import ApiToken


class Command(BaseCommand):
    help = "Create an API token (Authorization: Token <key>) for a user."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="A note to tell tokens apart.")
        parser.add_argument(
            "--days",
            type=int,
            default=ApiToken.DEFAULT_DAYS,
            help=f"Days until it expires (default {ApiToken.DEFAULT_DAYS}; 0: until revoked).",
        )

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user called {options['username']!r}")
        if options["days"] < 0:
            raise CommandError("--days must be 0 or more")
        _, key = ApiToken.issue(user, options["name"], days=options["days"] or None)
        self.stdout.write(key)
