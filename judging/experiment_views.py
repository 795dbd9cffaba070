"""Researchers create, edit and start experiments in the web: the definition is YAML or JSON text
(typed or uploaded), read by the same debates.experiments.load_experiment as the management
command, so a bad file gets the same line-numbered errors and stores nothing."""
import re

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from debates import experiment_spec
from debates.experiments import availability_problems, load_experiment, start_experiment
from debates.models import Debate, Experiment
from debates.protocol import Refused

from .pages import owned_experiment, researcher_required

MAX_DEFINITION_BYTES = 1_000_000
EXAMPLE = """name: My experiment
description: Debate against consultancy on the demo questions
dataset:
  source: debatelab-demo
protocols:
  - name: debate
    format: debate
    rounds: [simultaneous, judge_feedback, sequential, judge_feedback]
  - name: consultancy
    format: consultancy
debaters:
  kind: ai
  backend: scripted
judges:
  kind: human
  per_debate: 2
  offline: stepwise
counterbalance:
  seed: 1
blinding:
  aliases: true
  reveal_after_verdict: true
target_verdicts: 100
"""


@researcher_required
def experiment_new(request):
    text, errors, source_name = EXAMPLE, [], ""
    if request.method == "POST":
        text, source_name, errors = _posted_definition(request)
        if not errors:
            errors = _save(request, text, request.user, source_name)
            if not errors:
                return redirect("experiment_detail", experiment_id=_saved_experiment(request, text).pk)
    return _form(request, None, text, errors, source_name)


@researcher_required
def experiment_edit(request, experiment_id):
    experiment = owned_experiment(request.user, experiment_id)
    latest = experiment.latest_version()
    text, errors, source_name = (latest.source_text if latest else ""), [], ""
    if request.method == "POST":
        text, source_name, errors = _posted_definition(request)
        if not errors:
            errors = _same_name(text, experiment) or _save(request, text, experiment.owner, source_name, experiment)
            if not errors:
                return redirect("experiment_detail", experiment_id=experiment.pk)
    return _form(request, experiment, text, errors, source_name)


@researcher_required
@require_POST
def experiment_start(request, experiment_id):
    experiment = owned_experiment(request.user, experiment_id)
    version = experiment.latest_version()
    if version is None:
        messages.error(request, "This experiment has no definition to start.")
    elif version.frozen_at is not None:
        messages.error(request, f"Version {version.number} has already started. Edit the definition to make a new version.")
    else:
        try:
            debates = start_experiment(version.pk)
        except Refused as refused:
            messages.error(request, f"Could not start version {version.number}: {refused.message}.")
        else:
            started = Debate.objects.filter(pk__in=[d.pk for d in debates]).exclude(status=Debate.SCHEDULED).count()
            messages.success(request, f"Started version {version.number}: {len(debates)} debate{'s' if len(debates) != 1 else ''} "
                                      f"created, {started} under way.")
    return redirect("experiment_detail", experiment_id=experiment.pk)


def _posted_definition(request) -> tuple[str, str, list[str]]:
    """The definition from an uploaded file if there is one, else from the text box."""
    upload = request.FILES.get("file")
    if upload is None:
        return request.POST.get("definition", ""), "", []
    if upload.size > MAX_DEFINITION_BYTES:
        return "", upload.name, [f"the file is larger than {MAX_DEFINITION_BYTES // 1000} kB"]
    try:
        return upload.read().decode("utf-8"), upload.name, []
    except UnicodeDecodeError:
        return "", upload.name, ["the file is not UTF-8 text (save it as YAML or JSON)"]


def _same_name(text: str, experiment: Experiment) -> list[str]:
    """Editing keeps the experiment's name: the name is what ties versions together."""
    try:
        name = experiment_spec.parse(text)["name"]
    except experiment_spec.SpecError as error:
        return error.errors
    if name != experiment.name:
        line = next((i for i, row in enumerate(text.splitlines(), 1) if re.match(r"\s*\"?name\"?\s*:", row)), 1)
        return [f"line {line}: name: an edit keeps the name {experiment.name!r}; "
                f"to make a new experiment use “New experiment”"]
    return []


def _save(request, text: str, owner, source_name: str, experiment: Experiment | None = None) -> list[str]:
    if len(text.encode()) > MAX_DEFINITION_BYTES:
        return [f"the definition is larger than {MAX_DEFINITION_BYTES // 1000} kB"]
    previous = experiment.latest_version() if experiment else None
    if experiment is None:
        try:
            name = experiment_spec.parse(text)["name"]
        except experiment_spec.SpecError as error:
            return error.errors
        existing = Experiment.objects.filter(owner=owner, name=name).first()
        previous = existing.latest_version() if existing else None
    try:
        problems = availability_problems(experiment_spec.parse(text), text)
    except experiment_spec.SpecError as error:
        return error.errors
    if problems:
        return problems
    try:
        version, created = load_experiment(text, owner, source_name or "web form")
    except experiment_spec.SpecError as error:
        return error.errors
    messages.success(request, _saved_message(previous, version, created))
    for deprecation in experiment_spec.check(text).deprecations:
        messages.warning(request, f"Saved, but written the old way: {deprecation}.")
    return []


def _saved_message(previous, version, created) -> str:
    if previous is None:
        return f"Saved {version.experiment.name} as version {version.number}. Start it when you are ready."
    if created:
        return (f"Version {previous.number} has started, so its definition is frozen: "
                f"your edit is saved as a new version, version {version.number}.")
    if experiment_spec.canonical_json(previous.definition) == experiment_spec.canonical_json(version.definition):
        return f"Nothing changed: version {version.number} is as it was."
    return f"Saved your changes to version {version.number} (not started yet)."


def _saved_experiment(request, text: str) -> Experiment:
    return Experiment.objects.get(owner=request.user, name=experiment_spec.parse(text)["name"])


def _form(request, experiment, text, errors, source_name):
    error_lines = {int(m.group(1)) for e in errors if (m := re.match(r"line (\d+):", e))}
    listing = [{"number": i, "text": row, "error": i in error_lines} for i, row in enumerate(text.splitlines(), 1)]
    latest = experiment.latest_version() if experiment else None
    return render(request, "judging/experiment_form.html", {
        "experiment": experiment, "latest": latest, "text": text, "errors": errors, "listing": listing,
        "source_name": source_name,
    }, status=400 if errors else 200)
