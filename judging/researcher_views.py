"""Researchers' pages: their experiments, each experiment's analysis, the NYU reproduction, and the
streaming dataset downloads. Judges and debaters get 403; people who are not signed in go to the
sign-in page; a researcher sees only the experiments they own (a superuser sees all)."""

import functools
import re

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.db import connection
from django.db.models import Count, Q
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from debates import experiment_spec
from debates.experiments import availability_problems, load_experiment, start_experiment
from debates.models import RESEARCHER, Debate, Experiment, has_role
from debates.protocol import Refused

from . import analysis, crowd, export
from .export.datasheet import datasheet
from .models import ApiToken, Verdict
from .quality import participant_quality, quality_label


def researcher_required(view):
    @login_required
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if not has_role(request.user, RESEARCHER):
            raise PermissionDenied("Only researchers may see experiments, analyses and exports.")
        return view(request, *args, **kwargs)

    return wrapped


def owned_experiment(user, experiment_id: int) -> Experiment:
    """An experiment of the user's space (owned or shared with them; any for a superuser)."""
    experiment = get_object_or_404(Experiment, pk=experiment_id)
    if not Experiment.visible_to(user).filter(pk=experiment.pk).exists():
        raise PermissionDenied("This experiment belongs to another researcher.")
    return experiment


def may_see_identities(user) -> bool:
    return user.is_superuser or user.has_perm("judging.export_identities")


def _version_number(request):
    value = request.GET.get("version")
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise Http404("version must be a number") from None


# ---------------------------------------------------------------------------------------------
# Experiments


@researcher_required
def experiment_list(request):
    experiments = (
        export.experiments_of(request.user)
        .select_related("owner")
        .annotate(
            version_count=Count("versions", distinct=True),
            debate_count=Count("versions__debates", distinct=True),
            verdict_count=Count("versions__debates__verdicts", distinct=True),
        )
        .order_by("-created_at")
    )
    return render(request, "judging/experiment_list.html", {"experiments": experiments})


@researcher_required
def experiment_detail(request, experiment_id):
    experiment = owned_experiment(request.user, experiment_id)
    versions = list(
        experiment.versions.annotate(
            debate_count=Count("debates", distinct=True),
            verdict_count=Count("debates__verdicts", distinct=True),
            complete=Count("debates", filter=Q(debates__status=Debate.COMPLETE), distinct=True),
        ).order_by("-number")
    )
    for version in versions:
        target = (version.definition or {}).get("target_verdicts")
        version.target = target
        version.progress = min(1.0, version.verdict_count / target) if target else None
    by_status = dict(
        Debate.objects.filter(experiment_version__experiment=experiment)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    statuses = [(label, by_status.get(status, 0)) for status, label in Debate.STATUSES]
    verdicts = analysis.experiment_verdicts(experiment)
    return render(
        request,
        "judging/experiment_detail.html",
        {
            "experiment": experiment,
            "versions": versions,
            "statuses": statuses,
            "verdict_count": verdicts.count(),
            "human_verdicts": verdicts.filter(judge_kind=Verdict.HUMAN).count(),
            "may_see_identities": may_see_identities(request.user),
            "formats": export.FORMATS,
            "csv_available": connection.vendor == "postgresql",
            "database_vendor": connection.vendor,
            **_study_context(request, experiment),
        },
    )


def _study_context(request, experiment):
    version = crowd.study_version(experiment) or experiment.latest_version()
    platform, link = crowd.study_link(request, experiment)
    participants = experiment.study_participants.select_related("user").order_by("-id")
    shown = list(participants[:200])
    for participant in shown:
        participant.quality = quality_label(participant_quality(participant, version))
    return {
        "study_platform": platform,
        "study_link": link,
        "study_counts": crowd.status_counts(experiment),
        "study_participants": shown,
        "waiting_room": crowd.waiting_room(experiment),
        "monitor": crowd.monitor(experiment),
        "bonus_batches": sorted({b for b in participants.values_list("bonus_batch", flat=True) if b}),
        "bonus_owed": participants.filter(status="completed", bonus__gt=0, bonus_batch=None).count(),
        "invitations": experiment.invitations.order_by("-id")[:20],
    }


# ---------------------------------------------------------------------------------------------
# Creating, editing and starting experiments
# Researchers create, edit and start experiments in the web: the definition is YAML or JSON text
# (typed or uploaded), read by the same debates.experiments.load_experiment as the management
# command, so a bad file gets the same line-numbered errors and stores nothing.

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
        messages.error(
            request, f"Version {version.number} has already started. Edit the definition to make a new version."
        )
    else:
        try:
            debates = start_experiment(version.pk)
        except Refused as refused:
            messages.error(request, f"Could not start version {version.number}: {refused.message}.")
        else:
            started = Debate.objects.filter(pk__in=[d.pk for d in debates]).exclude(status=Debate.SCHEDULED).count()
            messages.success(
                request,
                f"Started version {version.number}: {len(debates)} debate{'s' if len(debates) != 1 else ''} "
                f"created, {started} under way.",
            )
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
        return [
            f"line {line}: name: an edit keeps the name {experiment.name!r}; "
            f"to make a new experiment use “New experiment”"
        ]
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
        return (
            f"Version {previous.number} has started, so its definition is frozen: "
            f"your edit is saved as a new version, version {version.number}."
        )
    if experiment_spec.canonical_json(previous.definition) == experiment_spec.canonical_json(version.definition):
        return f"Nothing changed: version {version.number} is as it was."
    return f"Saved your changes to version {version.number} (not started yet)."


def _saved_experiment(request, text: str) -> Experiment:
    return Experiment.objects.get(owner=request.user, name=experiment_spec.parse(text)["name"])


def _form(request, experiment, text, errors, source_name):
    error_lines = {int(m.group(1)) for e in errors if (m := re.match(r"line (\d+):", e))}
    listing = [{"number": i, "text": row, "error": i in error_lines} for i, row in enumerate(text.splitlines(), 1)]
    latest = experiment.latest_version() if experiment else None
    return render(
        request,
        "judging/experiment_form.html",
        {
            "experiment": experiment,
            "latest": latest,
            "text": text,
            "errors": errors,
            "listing": listing,
            "source_name": source_name,
        },
        status=400 if errors else 200,
    )


# ---------------------------------------------------------------------------------------------
# Analysis


def _analysis_context(result):
    figures = result["figures"]
    for figure in figures:
        figure.safe_svg = mark_safe(figure.svg)  # built by judging.svg, which escapes every text it draws
    return {"figures": figures, "summary": result["summary"], "stamp": result["stamp"], "stale": result["stale"]}


@researcher_required
def experiment_analysis(request, experiment_id):
    experiment = owned_experiment(request.user, experiment_id)
    version = _version_number(request)
    result = analysis.analyse(analysis.experiment_verdicts(experiment, version), wait=False)
    context = _analysis_context(result)
    context.update(
        experiment=experiment,
        version=version,
        stamp_url=request.path + "stamp.json" + (f"?version={version}" if version is not None else ""),
    )
    template = "judging/analysis_figures.html" if request.GET.get("partial") else "judging/analysis.html"
    return render(request, template, context)


@researcher_required
def experiment_analysis_stamp(request, experiment_id):
    experiment = owned_experiment(request.user, experiment_id)
    return JsonResponse(
        {"stamp": analysis.data_stamp(analysis.experiment_verdicts(experiment, _version_number(request)))}
    )


def _figure_csv(result, key: str, filename: str) -> HttpResponse:
    for figure in result["figures"]:
        if figure.key == key:
            response = HttpResponse(figure.csv(), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="{filename}-{key}.csv"'
            return response
    raise Http404(f"no figure called {key!r}")


@researcher_required
def experiment_figure_csv(request, experiment_id, key):
    experiment = owned_experiment(request.user, experiment_id)
    result = analysis.analyse(analysis.experiment_verdicts(experiment, _version_number(request)))
    return _figure_csv(result, key, f"experiment-{experiment.pk}")


@researcher_required
def nyu_analysis(request):
    verdicts = analysis.nyu_verdicts()
    reproduction = analysis.nyu_reproduction()
    reproduction.safe_svg = mark_safe(reproduction.svg)
    context = _analysis_context(analysis.analyse(verdicts))
    context.update(reproduction=reproduction, source=analysis.NYU_SOURCE)
    return render(request, "judging/analysis_nyu.html", context)


@researcher_required
def nyu_figure_csv(request, key):
    if key == "nyu-reproduction":
        figure = analysis.nyu_reproduction()
        response = HttpResponse(figure.csv(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="nyu-reproduction.csv"'
        return response
    return _figure_csv(analysis.analyse(analysis.nyu_verdicts()), key, "nyu-debate-2023")


# ---------------------------------------------------------------------------------------------
# Exports


def export_options(request, experiment: Experiment, user) -> export.ExportOptions:
    """Options from the query string: hidden=1 includes hidden material; identities=1 asks for
    usernames, which only users with the export_identities permission get."""
    identities = request.GET.get("identities") == "1"
    if identities and not may_see_identities(user):
        raise PermissionDenied("You may not export identities; the export uses pseudonyms.")
    return export.ExportOptions(
        experiment_ids=[experiment.pk],
        version_number=_version_number(request),
        include_hidden=request.GET.get("hidden") == "1",
        identities=identities,
    )


def streaming_bundle(request, fmt: str, options: export.ExportOptions, filename: str) -> StreamingHttpResponse:
    """A zip of the export, produced while it is sent. Under ASGI the chunks come from the database
    in a worker thread one at a time (Django would otherwise read a synchronous iterator whole)."""
    try:
        files = export.bundle(fmt, options)
    except export.ExportError as error:
        return HttpResponse(str(error), status=400 if "format" in str(error) else 503, content_type="text/plain")
    chunks = export.zip_stream(files)
    if isinstance(request, ASGIRequest):
        chunks = _async_chunks(chunks)
    response = StreamingHttpResponse(chunks, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{filename}-{fmt}.zip"'
    response["X-Accel-Buffering"] = "no"
    return response


async def _async_chunks(chunks):
    take = sync_to_async(lambda: next(chunks, None), thread_sensitive=True)
    while (chunk := await take()) is not None:
        yield chunk


@researcher_required
def experiment_export(request, experiment_id, fmt):
    experiment = owned_experiment(request.user, experiment_id)
    return streaming_bundle(
        request, fmt, export_options(request, experiment, request.user), f"experiment-{experiment.pk}"
    )


@researcher_required
def experiment_datasheet(request, experiment_id):
    experiment = owned_experiment(request.user, experiment_id)
    options = export_options(request, experiment, request.user)
    return HttpResponse(datasheet(options), content_type="text/markdown; charset=utf-8")


# ---------------------------------------------------------------------------------------------
# API tokens
# The API tokens page: a researcher makes tokens for scripts (shown once), sees when each was
# used and when it expires, and revokes them. Only a hash of each key is stored.

EXPIRY_CHOICES = (7, 30, 90, 365)
MAX_TOKEN_NAME = 100  # ApiToken.name


@researcher_required
def api_tokens(request):
    new_key, errors = None, []
    if request.method == "POST":
        name = request.POST.get("name", "").strip()
        days = request.POST.get("days", "")
        if len(name) > MAX_TOKEN_NAME or "\x00" in name:
            errors.append(f"a name has at most {MAX_TOKEN_NAME} characters")
        if days not in {str(d) for d in EXPIRY_CHOICES}:
            errors.append("choose when the token expires")
        if not errors:
            _, new_key = ApiToken.issue(request.user, name, days=int(days))
    tokens = ApiToken.objects.filter(user=request.user).order_by("-created_at")
    return render(
        request,
        "judging/api_tokens.html",
        {
            "tokens": tokens,
            "new_key": new_key,
            "errors": errors,
            "expiry_choices": EXPIRY_CHOICES,
            "default_days": ApiToken.DEFAULT_DAYS,
        },
        status=400 if errors else 200,
    )


@researcher_required
@require_POST
def revoke_api_token(request, token_id):
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    token.revoke()
    messages.success(request, f"Revoked the token {token.prefix}…; scripts using it now get 401.")
    return redirect("api_tokens")
