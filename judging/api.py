"""JSON API for scripts: token auth (Authorization: Token <key>), an OpenAPI 3 schema at
/api/schema.json. A token acts as its user: researchers reach their own experiments only."""

import functools
import hashlib
import hmac

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.utils import timezone

from debates.models import RESEARCHER, has_role

from . import analysis, crowd, export
from .export.datasheet import datasheet
from .models import ApiToken
from .researcher_views import export_options, owned_experiment, streaming_bundle

MAX_PAGE = 1_000
DEFAULT_PAGE = 100


def _error(status: int, message: str) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Token realm="DebateLab API"'
    return response


def token_required(view):
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme != "Token" or not key.strip():
            return _error(401, "send an API token: Authorization: Token <key>")
        token = ApiToken.usable().select_related("user").filter(key_hash=ApiToken.hash_key(key.strip())).first()
        if token is None or not token.user.is_active:
            return _error(401, "this API token is not valid (unknown, expired or revoked)")
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
        request.user, request.api_token = token.user, token
        if not has_role(token.user, RESEARCHER):
            return _error(403, "only researchers may use the API")
        try:
            return view(request, *args, **kwargs)
        except PermissionDenied as denied:
            return _error(403, str(denied) or "not allowed")
        except Http404 as missing:
            return _error(404, str(missing) or "not found")
        except ValueError as error:
            return _error(400, str(error))

    return wrapped


def _token_key(token: ApiToken) -> bytes:
    """The pseudonym key of a token's exports: stable across its pages and calls, different per token."""
    return hmac.new(
        settings.SECRET_KEY.encode(), f"api-token:{token.pk}:{token.key_hash}".encode(), hashlib.sha256
    ).digest()


def _experiment_json(experiment, request) -> dict:
    base = request.build_absolute_uri(f"/api/experiments/{experiment.pk}/")
    return {
        "id": experiment.pk,
        "name": experiment.name,
        "owner": experiment.owner.get_username(),
        "created_at": experiment.created_at.isoformat(),
        "versions": [
            {
                "number": v.number,
                "frozen_at": v.frozen_at.isoformat() if v.frozen_at else None,
                "code_version": v.code_version,
                "target_verdicts": (v.definition or {}).get("target_verdicts"),
                "debates": v.debates.count(),
            }
            for v in experiment.versions.order_by("number")
        ],
        "verdicts": analysis.experiment_verdicts(experiment).count(),
        "study_link": crowd.study_link(request, experiment)[1],
        "links": {
            "analysis": base + "analysis/",
            "verdicts": base + "verdicts/",
            "datasheet": base + "datasheet.md",
            **{f"export_{f}": base + f"export.{f}.zip" for f in export.FORMATS},
        },
    }


@token_required
def experiments(request):
    listed = export.experiments_of(request.user).select_related("owner").order_by("id")
    return JsonResponse({"results": [_experiment_json(e, request) for e in listed]})


@token_required
def experiment(request, experiment_id):
    return JsonResponse(_experiment_json(owned_experiment(request.user, experiment_id), request))


@token_required
def experiment_analysis(request, experiment_id):
    found = owned_experiment(request.user, experiment_id)
    wait = request.GET.get("wait") == "1"
    result = analysis.analyse(analysis.experiment_verdicts(found), wait=wait)
    return JsonResponse(
        {
            "experiment": found.pk,
            "stamp": result["stamp"],
            "stale": result["stale"],
            "summary": result["summary"],
            "figures": [f.as_json() for f in result["figures"]],
        }
    )


def _options(request, found) -> export.ExportOptions:
    options = export_options(request, found, request.user)
    options.key = _token_key(request.api_token)
    return options


def _whole_number(request, name, default, low, high):
    value = request.GET.get(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number") from None
    if not low <= number <= high:
        raise ValueError(f"{name} must be between {low} and {high}")
    return number


@token_required
def experiment_verdicts(request, experiment_id):
    found = owned_experiment(request.user, experiment_id)
    after = _whole_number(request, "after", 0, 0, 2**62)
    limit = _whole_number(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    try:
        page = export.records(_options(request, found), after_id=after, limit=limit)
    except export.ExportError as error:
        return _error(503, str(error))
    next_url = None
    if len(page) == limit:
        query = request.GET.copy()
        query["after"] = page[-1]["verdict_id"]
        next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
    return JsonResponse({"results": page, "next": next_url})


@token_required
def experiment_export(request, experiment_id, fmt):
    found = owned_experiment(request.user, experiment_id)
    return streaming_bundle(request, fmt, _options(request, found), f"experiment-{found.pk}")


@token_required
def experiment_datasheet(request, experiment_id):
    found = owned_experiment(request.user, experiment_id)
    return HttpResponse(datasheet(_options(request, found)), content_type="text/markdown; charset=utf-8")


# ---------------------------------------------------------------------------------------------
# OpenAPI


def _record_schema(fields) -> dict:
    types = {
        "int": {"type": "integer"},
        "float": {"type": "number"},
        "bool": {"type": "boolean"},
        "string": {"type": "string"},
        "list<int>": {"type": "array", "items": {"type": "integer"}},
        "list<float>": {"type": "array", "items": {"type": "number"}},
        "list<string>": {"type": "array", "items": {"type": "string"}},
    }
    properties = {}
    for f in fields:
        if f.kind == "struct":
            schema = _record_schema(f.children)
        elif f.kind == "list<struct>":
            schema = {"type": "array", "items": _record_schema(f.children)}
        else:
            schema = dict(types[f.kind])
        schema["description"] = f.description
        schema["nullable"] = True
        properties[f.name] = schema
    return {"type": "object", "properties": properties}


def _get(summary, description, parameters=(), response=None, content_type="application/json"):
    responses = {
        "200": {"description": description, "content": {content_type: {"schema": response or {"type": "object"}}}},
        "401": {
            "description": "No token, or a wrong one",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        },
        "403": {"description": "Not a researcher, or not the experiment's owner"},
        "404": {"description": "No such experiment"},
    }
    return {
        "get": {"summary": summary, "parameters": list(parameters), "responses": responses, "security": [{"token": []}]}
    }


EXPERIMENT_ID = {"name": "experiment_id", "in": "path", "required": True, "schema": {"type": "integer"}}
EXPORT_PARAMETERS = [
    {
        "name": "hidden",
        "in": "query",
        "schema": {"type": "string", "enum": ["0", "1"]},
        "description": "1: include hidden material (passages, images, private notes).",
    },
    {
        "name": "identities",
        "in": "query",
        "schema": {"type": "string", "enum": ["0", "1"]},
        "description": "1: usernames instead of pseudonyms (needs the judging.export_identities permission).",
    },
    {"name": "version", "in": "query", "schema": {"type": "integer"}, "description": "Only this version's debates."},
]


def openapi_schema() -> dict:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "DebateLab API",
            "version": "1",
            "description": "Experiments, their analysis and their verdict datasets, for scripts. Create a token "
            "with `manage.py create_api_token <username>` and send `Authorization: Token <key>`.",
        },
        "components": {
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "The word Token, a space, then the key.",
                }
            },
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
                "VerdictRecord": _record_schema(export.RECORD_FIELDS),
            },
        },
        "paths": {
            "/api/experiments/": _get("Your experiments", "The experiments you own"),
            "/api/experiments/{experiment_id}/": _get("One experiment", "Versions, counts and links", [EXPERIMENT_ID]),
            "/api/experiments/{experiment_id}/analysis/": _get(
                "The experiment's analysis",
                "Every figure's numbers (the rows behind the page's charts). When "
                "verdicts arrived since the last computation, the previous numbers come back with stale: true "
                "while new ones are computed; wait=1 waits for them instead.",
                [EXPERIMENT_ID, {"name": "wait", "in": "query", "schema": {"type": "string", "enum": ["0", "1"]}}],
            ),
            "/api/experiments/{experiment_id}/verdicts/": _get(
                "Verdict records, a page at a time",
                "Records in verdict id order; follow `next` for more",
                [
                    EXPERIMENT_ID,
                    *EXPORT_PARAMETERS,
                    {
                        "name": "after",
                        "in": "query",
                        "schema": {"type": "integer"},
                        "description": "Only verdicts with a larger id (the last id of the previous page).",
                    },
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}},
                ],
                {
                    "type": "object",
                    "properties": {
                        "results": {"type": "array", "items": {"$ref": "#/components/schemas/VerdictRecord"}},
                        "next": {"type": "string", "nullable": True},
                    },
                },
            ),
            **{
                f"/api/experiments/{{experiment_id}}/export.{fmt}.zip": _get(
                    f"The whole dataset as {fmt.upper()} (zip, streamed)",
                    "A zip with the data, the experiment versions and the datasheet",
                    [EXPERIMENT_ID, *EXPORT_PARAMETERS],
                    {"type": "string", "format": "binary"},
                    "application/zip",
                )
                for fmt in export.FORMATS
            },
            "/api/experiments/{experiment_id}/datasheet.md": _get(
                "The datasheet", "Markdown", [EXPERIMENT_ID, *EXPORT_PARAMETERS], {"type": "string"}, "text/markdown"
            ),
        },
    }


def schema(request):
    return JsonResponse(openapi_schema())
