"""What an export is asked for (ExportOptions: the filters, hidden material, identities) and what it
writes (the file names and formats); the verdicts and experiment versions it selects, and the
pseudonyms it gives people."""

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import connection

from debates.models import Experiment, ExperimentVersion

from ..models import Verdict


JSONL_NAME = "verdicts.jsonl"
VERSIONS_NAME = "experiment_versions.jsonl"
DATASHEET_NAME = "DATASHEET.md"
PARQUET_NAME = "verdicts.parquet"
CSV_TABLES = ("debates", "participants", "turns", "judgments")
FORMATS = ("jsonl", "csv", "parquet")


class ExportError(Exception):
    """A request for an export that cannot be served (bad filter, wrong database)."""


@dataclass
class ExportOptions:
    experiment_ids: list[int] | None = None  # None: every verdict the caller may export
    version_number: int | None = None
    source: str | None = None
    protocol_name: str | None = None
    judge_kind: str | None = None
    include_hidden: bool = False
    identities: bool = False  # usernames instead of pseudonyms
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    licence: str = "CC-BY-4.0"

    def filters_applied(self) -> list[str]:
        described = []
        if self.experiment_ids is not None:
            described.append(f"experiments: {', '.join(map(str, self.experiment_ids)) or 'none'}")
        for label, value in (
            ("experiment version", self.version_number),
            ("debate source", self.source),
            ("protocol", self.protocol_name),
            ("judge kind", self.judge_kind),
        ):
            if value is not None:
                described.append(f"{label}: {value}")
        return described or ["none (every verdict)"]


def check_postgresql() -> None:
    if connection.vendor != "postgresql":
        raise ExportError(
            f"the CSV tables need PostgreSQL (set DATABASE_URL); this DebateLab runs on {connection.vendor}"
        )


def pseudonym(user_id: int, key: bytes) -> str:
    """The pseudonym an export with this key gives a user id (HMAC-SHA256, first 16 hex digits)."""
    key = key if len(key) <= 64 else hashlib.sha256(key).digest()
    return "u-" + hmac.new(key, str(user_id).encode(), hashlib.sha256).hexdigest()[:16]


def versions_of(options: ExportOptions):
    """The experiment versions behind the selected verdicts."""
    return ExperimentVersion.objects.filter(pk__in=verdict_queryset(options).values("debate__experiment_version_id"))


def pseudonymised_definition(definition: dict, key: bytes) -> dict:
    """An experiment definition as a pseudonymised export shows it: the judge and debater pools
    name people, so their usernames become the same pseudonyms as in the records. (The file as
    written, source_text, names them too: it is left out.)"""
    definition = json.loads(json.dumps(definition or {}))
    pools = [
        section
        for section in (definition.get("debaters"), definition.get("judges"))
        if isinstance(section, dict) and isinstance(section.get("pool"), list)
    ]
    names = {name for section in pools for name in section["pool"]}
    ids = dict(get_user_model().objects.filter(username__in=names).values_list("username", "id"))
    for section in pools:
        section["pool"] = [pseudonym(ids[name], key) if name in ids else "unknown" for name in section["pool"]]
    return definition


def verdict_queryset(options: ExportOptions):
    """The same selection as the SQL, for counts and the datasheet."""
    verdicts = Verdict.objects.all()
    if options.experiment_ids is not None:
        verdicts = verdicts.filter(debate__experiment_version__experiment_id__in=options.experiment_ids)
    if options.version_number is not None:
        verdicts = verdicts.filter(debate__experiment_version__number=options.version_number)
    if options.source is not None:
        verdicts = verdicts.filter(debate__source=options.source)
    if options.protocol_name is not None:
        verdicts = verdicts.filter(debate__protocol_name=options.protocol_name)
    if options.judge_kind is not None:
        verdicts = verdicts.filter(judge_kind=options.judge_kind)
    return verdicts


def experiments_of(user):
    """The experiments a user may export: their own and those shared with them, or all for a superuser."""
    return Experiment.visible_to(user)
