from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from debates.experiment_spec import SpecError, check, parse
from debates.experiments import availability_problems, load_experiment, start_experiment
from debates.protocol import Refused


class Command(BaseCommand):
    help = "Load an experiment definition (YAML or JSON) and optionally start it."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--owner", required=True, help="username of the researcher who owns it")
        parser.add_argument("--start", action="store_true", help="freeze this version and create its debates")

    def handle(self, path, owner, start, **options):
        if not path.exists():
            raise CommandError(f"{path} does not exist")
        user = get_user_model().objects.filter(username=owner).first()
        if user is None:
            raise CommandError(f"no user named {owner!r}")
        text = path.read_text()
        try:
            problems = availability_problems(parse(text), text)
            if problems:
                raise SpecError(problems)
            version, created = load_experiment(text, user, source_name=str(path))
        except SpecError as error:
            raise CommandError(f"{path} has errors:\n" + "\n".join(f"  {path}:{e}" for e in error.errors)) from None
        self.stdout.write(f"{'Created' if created else 'Loaded'} {version} (version id {version.pk})")
        for deprecation in check(text).deprecations:
            self.stderr.write(f"warning: {path}:{deprecation}")
        if start:
            try:
                debates = start_experiment(version.pk)
            except Refused as refused:
                raise CommandError(refused.message) from None
            self.stdout.write(f"Started: {len(debates)} debates created")
