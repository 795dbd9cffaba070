"""An export's records as lines: streamed from PostgreSQL by COPY ... TO STDOUT (constant memory, little
more than COPY's own cost), or built in Python on other databases (python_records); the CSV tables
(PostgreSQL only) and the experiment versions."""

import itertools
import json

from django.contrib.auth import get_user_model
from django.db import connection

from debates.models import Participant, Turn

from ..models import Verdict
from ..quality import verdict_quality
from .fields import quotes_of
from .options import ExportOptions, check_postgresql, pseudonym, pseudonymised_definition, verdict_queryset, versions_of
from .sql import csv_table_sql, formula_safe_sql, record_sql


def _copy_lines(sql: str, params: list):
    """Rows of a one-column COPY in text format, as bytes ending in a newline. COPY's text format
    doubles backslashes; JSON text holds no raw control characters, so undoing that is all."""
    check_postgresql()
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT", params) as copy:
            for row in copy:
                yield bytes(row).replace(b"\\\\", b"\\")


def jsonl_lines(options: ExportOptions):
    """The JSONL export, one record (bytes, newline-terminated) per verdict, streamed from the database."""
    if connection.vendor != "postgresql":
        for record in python_records(options):
            yield (json.dumps(record, ensure_ascii=False) + "\n").encode()
        return
    sql, params = record_sql(options)
    yield from _copy_lines(sql, params)


def records(options: ExportOptions, after_id: int | None = None, limit: int | None = None) -> list[dict]:
    """A page of records as dicts (for the JSON API)."""
    if connection.vendor != "postgresql":
        return list(python_records(options, after_id, limit))
    sql, params = record_sql(options, after_id, limit)
    return [json.loads(line) for line in _copy_lines(sql, params)]


def python_records(options: ExportOptions, after_id: int | None = None, limit: int | None = None, chunk: int = 500):
    """The same records built in Python, for databases other than PostgreSQL (the embedded SQLite
    default). Slower, and still in constant memory: verdicts are read `chunk` at a time."""
    User = get_user_model()
    usernames = {}

    def person(user_id):
        if user_id is None:
            return None
        if not options.identities:
            return pseudonym(user_id, options.key)
        if user_id not in usernames:
            usernames[user_id] = User.objects.filter(pk=user_id).values_list("username", flat=True).first()
        return usernames[user_id]

    def when(value):
        return value.isoformat() if value else None

    def text(value):
        return None if value is None else json.dumps(value, ensure_ascii=False)

    ids = verdict_queryset(options).order_by("id").values_list("id", flat=True)
    if after_id is not None:
        ids = ids.filter(id__gt=after_id)
    ids = list(ids[:limit]) if limit is not None else ids.iterator(chunk_size=chunk)
    batch = []
    for verdict_id in itertools.chain(ids, [None]):
        if verdict_id is not None:
            batch.append(verdict_id)
            if len(batch) < chunk:
                continue
        if not batch:
            break
        verdicts = list(
            Verdict.objects.filter(id__in=batch)
            .order_by("id")
            .select_related("debate__question", "debate__experiment_version__experiment")
        )
        debate_ids = {v.debate_id for v in verdicts}
        seats, turns = {}, {}
        for p in Participant.objects.filter(debate_id__in=debate_ids).order_by("id"):
            seats.setdefault(p.debate_id, []).append(p)
        for t in Turn.objects.filter(debate_id__in=debate_ids).order_by("id"):
            turns.setdefault(t.debate_id, []).append(t)
        for v in verdicts:
            d, q = v.debate, v.debate.question
            version = d.experiment_version
            yield {
                "verdict_id": v.pk,
                "debate_id": d.pk,
                "question_id": q.pk,
                "experiment": version.experiment.name if version else None,
                "experiment_id": version.experiment_id if version else None,
                "experiment_version": version.number if version else None,
                "experiment_version_id": version.pk if version else None,
                "protocol_name": d.protocol_name,
                "protocol_format": (d.provenance or {}).get("format"),
                "protocol_json": text(d.protocol),
                "code_version": (d.provenance or {}).get("code_version") or (version.code_version if version else None),
                "debate_source": d.source,
                "debate_external_id": d.external_id,
                "debate_status": d.status,
                "answer_order": d.answer_order,
                "last_seq": d.last_seq,
                "debate_created_by": person(d.created_by_id),
                "debate_created_at": when(d.created_at),
                "debate_started_at": when(d.started_at),
                "debate_ended_at": when(d.ended_at),
                "turn_deadline": when(d.turn_deadline),
                "debate_provenance_json": text(d.provenance),
                "question": {
                    "kind": q.kind,
                    "title": q.title,
                    "text": q.text,
                    "answers": q.answers,
                    "correct_index": q.correct_index,
                    "public_material": q.public_material,
                    "hidden_material": q.passage if options.include_hidden else None,
                    "hidden_image_json": text(q.hidden_image) if options.include_hidden else None,
                    "source": q.source,
                    "external_id": q.external_id,
                    "metadata_json": text(q.metadata),
                    "created_at": when(q.created_at),
                },
                "participants": [
                    {
                        "seat": p.seat,
                        "participant": person(p.user_id),
                        "answer_index": p.answer_index,
                        "honest": None if p.answer_index is None else p.answer_index == q.correct_index,
                        "alias": p.alias,
                        "agent_json": text(p.agent),
                    }
                    for p in seats.get(d.pk, [])
                ],
                "turns": [
                    {
                        "round": t.round_index,
                        "seat": t.seat,
                        "kind": t.kind,
                        "text": t.text,
                        "probabilities": t.probabilities,
                        "end_debate": t.end_debate,
                        "quotes": quotes_of(t.payload)[0],
                        "payload_json": text(quotes_of(t.payload)[1]),
                        "private_note": t.private_note if options.include_hidden else None,
                        "client_id": t.client_id,
                        "author": person(t.author_id),
                        "created_at": when(t.created_at),
                    }
                    for t in turns.get(d.pk, [])
                ],
                "judge": person(v.judge_id),
                "judge_kind": v.judge_kind,
                "ai_judge": v.ai_judge,
                "live": v.live,
                "probabilities": v.probabilities,
                "chosen_index": v.chosen_index,
                "correct": v.correct,
                "p_correct": float(v.probabilities[q.correct_index]),
                "reason": v.reason,
                "seconds_spent": v.seconds_spent,
                "hidden_seconds": v.hidden_seconds,
                "quality": verdict_quality(v),
                "after_turn": v.after_turn,
                "after_seq": v.after_seq,
                "scoring_rule": v.scoring_rule,
                "score": v.score,
                "client_id": v.client_id,
                "verdict_provenance_json": text(v.provenance),
                "verdict_created_at": when(v.created_at),
            }
        batch = []


def version_lines(options: ExportOptions):
    for version in versions_of(options).select_related("experiment").order_by("id"):
        definition, source_text = version.definition, version.source_text
        if not options.identities:
            definition, source_text = pseudonymised_definition(definition, options.key), None
        yield (
            json.dumps(
                {
                    "experiment_version_id": version.pk,
                    "experiment_id": version.experiment_id,
                    "experiment": version.experiment.name,
                    "number": version.number,
                    "definition": definition,
                    "source_text": source_text,
                    "source_name": version.source_name,
                    "frozen_at": version.frozen_at.isoformat() if version.frozen_at else None,
                    "code_version": version.code_version,
                    "created_at": version.created_at.isoformat(),
                    "experiment_created_at": version.experiment.created_at.isoformat(),
                }
            )
            + "\n"
        ).encode()


def csv_lines(table: str, options: ExportOptions):
    check_postgresql()
    sql, params = formula_safe_sql(*csv_table_sql(table, options))
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER)", params) as copy:
            for row in copy:
                yield bytes(row)
