"""Run an AI judge over every finished debate that has no verdict from it yet."""

import json

from django.core.management.base import BaseCommand, CommandError

from debates.agents.errors import AgentError
from debates.models import Debate
from judging.ai_judges import judge_finished_debates


class Command(BaseCommand):
    help = (
        "Judge finished debates with an AI judge: an OpenAI-compatible or Anthropic model, or the scripted "
        "verified-quote baseline (no model, no network). Each verdict is stored with judge_kind=ai and its provenance."
    )

    def add_arguments(self, parser):
        parser.add_argument("--backend", required=True, help="A back-end named in DEBATELAB_AI_BACKENDS, or scripted.")
        parser.add_argument("--model", help="Model name (one the back-end offers).")
        parser.add_argument("--parameters", default="{}", help="Model parameters as JSON, e.g. '{\"temperature\": 0}'.")
        parser.add_argument("--prompts", default="{}", help="Prompt overrides as JSON (judge_system, judge_prompt).")
        parser.add_argument("--source", help="Only debates imported from this source.")
        parser.add_argument("--experiment-version", type=int, help="Only debates of this experiment version id.")

    def handle(self, *args, **options):
        config = {
            "backend": options["backend"],
            "parameters": self._json(options, "parameters"),
            "prompts": self._json(options, "prompts"),
        }
        if options["model"]:
            config["model"] = options["model"]
        debates = Debate.objects.all()
        if options["source"]:
            debates = debates.filter(source=options["source"])
        if options["experiment_version"]:
            debates = debates.filter(experiment_version_id=options["experiment_version"])
        try:
            verdicts = judge_finished_debates(config, debates)
        except AgentError as error:
            raise CommandError(error.message) from None
        correct = sum(v.correct for v in verdicts)
        self.stdout.write(f"{len(verdicts)} new AI verdicts ({correct} correct)")

    @staticmethod
    def _json(options, name):
        try:
            value = json.loads(options[name])
        except ValueError as error:
            raise CommandError(f"--{name} is not valid JSON: {error}") from None
        if not isinstance(value, dict):
            raise CommandError(f"--{name} must be a JSON object")
        return value
