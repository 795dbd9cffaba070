"""Exports that never lose or crash: quotes and every nested field have a declared schema, keys
nobody declared are kept in `extra`, Parquet, CSV and JSONL all come out of every test dataset
(the module experiment, a synthetic experiment, the NYU fixture rooms, a turn with odd quotes and,
when it is in shared/datasets/, the whole NYU dataset), every JSONL record validates against the
published JSON Schema, CSV booleans are true/false, and NYU debates are named by protocol."""

import csv
import io
import json
import os
from pathlib import Path

import jsonschema
import pyarrow.parquet as pq
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from debates.models import Debate, DebateEvent, Experiment, Participant, Question, Turn
from judging import export
from tests import synthetic
from judging.models import Verdict
from judging.reimport import import_dataset
from tests.factories import study_file

from .verdict_data import experiment_fixtures

shared, owner, experiment = experiment_fixtures(seed=13, questions=2, judges=2)

DATA = Path(__file__).resolve().parent / "data"
NYU_FIXTURE = DATA / "nyu" / "pub"
NYU_CANDIDATES = [
    Path(os.environ.get("NYU_DATASET", "")),
    *(  # $NYU_DATASET, then shared/ beside the checkout
        Path(__file__).resolve().parents[n] / "shared" / "datasets" / "nyu-debate-2023" for n in (1, 2)
    ),
]
NYU_DATA = next((p for p in NYU_CANDIDATES if (p / "pub").is_dir()), None)
ODD_QUOTES = [
    {"text": "the lamp", "status": "verified", "start": 5, "end": 13, "tokens": [1, 3]},
    {
        "text": "dark",
        "status": "near",
        "start": None,
        "end": None,
        "edits": 2,
        "cut_from_tokens": [7, 90],
        "tokens": [7, 9],
        "speaker_note": {"why": "unknown key"},
    },
    {"text": 42, "status": "verified", "start": "5", "end": 7.5, "tokens": ["a"]},
]


def _validator():
    schema = export.record_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def export_everything(tmp_path, options=None, **command_options) -> dict:
    """Every format of one selection through the export command; returns what came out."""
    counts = {}
    for fmt in export.FORMATS:
        out = tmp_path / fmt
        call_command("export_verdicts", str(out), "--format", fmt, verbosity=0, **command_options)
        assert (out / export.DATASHEET_NAME).exists()
        if fmt == "jsonl":
            lines = (out / export.JSONL_NAME).read_text().splitlines()
            validator = _validator()
            records = [json.loads(line) for line in lines]
            for record in records:
                errors = sorted(validator.iter_errors(record), key=lambda e: list(e.path))
                assert not errors, (record["verdict_id"], [f"{list(e.path)}: {e.message}" for e in errors[:3]])
            counts["jsonl"], counts["records"] = len(records), records
        elif fmt == "parquet":
            table = pq.read_table(out / export.PARQUET_NAME)
            assert table.schema.equals(export.arrow_schema())
            counts["parquet"] = table.num_rows
            counts["parquet_table"] = table
        else:
            tables = {
                name: list(csv.DictReader(io.StringIO((out / f"{name}.csv").read_text()))) for name in export.CSV_TABLES
            }
            counts["csv"] = len(tables["judgments"])
            counts["csv_tables"] = tables
    assert counts["jsonl"] == counts["parquet"] == counts["csv"]
    return counts


def _booleans_are_words(tables: dict) -> None:
    columns = {"participants": ("honest", "ai"), "turns": ("end_debate",), "judgments": ("live", "correct")}
    for table, names in columns.items():
        for name in names:
            values = {row[name] for row in tables[table]}
            assert values <= {"true", "false", ""} and values & {"true", "false"}, (table, name, values)


@pytest.mark.postgresql
def test_the_module_experiment_exports_in_every_format_and_validates(experiment, tmp_path):
    counts = export_everything(tmp_path, experiment=[experiment.pk])
    assert counts["jsonl"] == Verdict.objects.filter(debate__experiment_version__experiment=experiment).count() > 0
    _booleans_are_words(counts["csv_tables"])
    quotes = [q for r in counts["records"] for t in r["turns"] for q in t["quotes"] or []]
    assert quotes and all(set(q) == {f.name for f in export.QUOTE_FIELDS} for q in quotes)


@pytest.mark.postgresql
def test_a_synthetic_experiment_exports_in_every_format_and_validates(db, tmp_path):
    owner = User.objects.create_user("synthetic-owner")
    made = synthetic.generate(60, owner=owner, seed=3, judges=10, debaters=6)
    counts = export_everything(tmp_path, experiment=[made.pk])
    assert counts["jsonl"] == 60
    _booleans_are_words(counts["csv_tables"])


@pytest.mark.postgresql
def test_odd_quotes_keep_every_key_and_come_back_on_reimport(experiment, tmp_path):
    turn = Turn.objects.filter(debate__experiment_version__experiment=experiment, kind="speech").order_by("id").first()
    turn.payload = dict(turn.payload, quotes=ODD_QUOTES, model="some-model")
    turn.save(update_fields=["payload"])
    counts = export_everything(tmp_path, experiment=[experiment.pk], identities=True, include_hidden=True)
    record = next(r for r in counts["records"] if r["debate_id"] == turn.debate_id)
    exported = next(t for t in record["turns"] if t["quotes"] and t["quotes"][0]["tokens"] == [1, 3])
    first, second, third = exported["quotes"]
    assert first["extra"] is None and first["edits"] is None and first["cut_from_tokens"] is None
    assert second["cut_from_tokens"] == [7, 90] and second["edits"] == 2
    assert json.loads(second["extra"]) == {"speaker_note": {"why": "unknown key"}}
    assert (third["text"], third["start"], third["end"], third["tokens"]) == (None, None, None, None)
    assert json.loads(third["extra"]) == {"text": 42, "start": "5", "end": 7.5, "tokens": ["a"]}
    assert json.loads(exported["payload_json"])["model"] == "some-model"
    # Parquet holds the same values
    parquet_turns = counts["parquet_table"].to_pylist()
    parquet_record = next(r for r in parquet_turns if r["verdict_id"] == record["verdict_id"])
    assert [t["quotes"] for t in parquet_record["turns"]] == [t["quotes"] for t in record["turns"]]
    # the Python twin (SQLite's path) declares the same way
    assert export.quotes_of(turn.payload)[0] == exported["quotes"]
    # and the quotes come back exactly as they were stored
    before = {t.pk: t.payload for t in Turn.objects.filter(debate=turn.debate)}
    lines = (tmp_path / "jsonl" / export.JSONL_NAME).read_bytes().splitlines()
    Verdict.objects.filter(debate__experiment_version__experiment=experiment).delete()
    debates = Debate.objects.filter(experiment_version__experiment=experiment)
    debate_source = {d.pk: (d.source, d.external_id) for d in debates}
    Turn.objects.filter(debate__in=debates).delete()
    DebateEvent.objects.filter(debate__in=debates).delete()
    Participant.objects.filter(debate__in=debates).delete()
    debates.delete()
    assert debate_source
    import_dataset(lines, owner=User.objects.get(username=experiment.owner.username))
    again = Debate.objects.get(turns__payload__quotes__contains=[{"tokens": [1, 3]}])
    assert [t.payload for t in again.turns.order_by("id")] == list(before.values())


def test_reimported_accounts_are_inactive_like_the_nyu_import(experiment, tmp_path):
    lines = b"".join(export.jsonl_lines(export.ExportOptions(experiment_ids=[experiment.pk], identities=True)))
    names = set(User.objects.values_list("username", flat=True))
    Verdict.objects.all().delete()
    Debate.objects.all().delete()
    Question.objects.all().delete()
    Experiment.objects.all().delete()
    User.objects.all().delete()
    User.objects.create_user("importer")
    import_dataset(lines.splitlines(), owner=User.objects.get(username="importer"))
    imported = User.objects.exclude(username="importer")
    assert imported.exists() and set(imported.values_list("username", flat=True)) <= names
    assert not imported.filter(is_active=True).exists()
    assert not any(u.has_usable_password() for u in imported)


@pytest.mark.postgresql
def test_nyu_fixture_rooms_are_named_by_protocol_and_export_their_token_spans(db, tmp_path):
    call_command("import_nyu", str(NYU_FIXTURE), verbosity=0)
    names = set(Debate.objects.filter(source="nyu-debate-2023").values_list("protocol_name", flat=True))
    assert names and names <= {"human debate", "AI debate", "human consultancy", "AI consultancy"}
    counts = export_everything(tmp_path, source="nyu-debate-2023")
    assert counts["jsonl"] == Verdict.objects.filter(debate__source="nyu-debate-2023").count() > 0
    quotes = [q for r in counts["records"] for t in r["turns"] for q in t["quotes"] or []]
    assert quotes and all(q["tokens"] and len(q["tokens"]) == 2 and q["extra"] is None for q in quotes)
    judged = Debate.objects.filter(source="nyu-debate-2023", verdicts__isnull=False)
    assert {r["protocol_name"] for r in counts["records"]} == set(judged.values_list("protocol_name", flat=True))
    _booleans_are_words(counts["csv_tables"])


@pytest.mark.slow
@pytest.mark.skipif(NYU_DATA is None, reason="the NYU dataset is not in shared/datasets/ (or $NYU_DATASET)")
def test_the_whole_nyu_dataset_exports_in_every_format_and_validates(db, tmp_path, capsys):
    from judging.nyu_import import import_nyu

    import_nyu(NYU_DATA / "pub")
    total = Verdict.objects.filter(debate__source="nyu-debate-2023").count()
    counts = export_everything(tmp_path, source="nyu-debate-2023")
    assert counts["jsonl"] == counts["parquet"] == counts["csv"] == total
    quotes = [q for r in counts["records"] for t in r["turns"] for q in t["quotes"] or []]
    assert sum(1 for q in quotes if q["cut_from_tokens"]) > 0 and all(q["tokens"] for q in quotes)
    _booleans_are_words(counts["csv_tables"])
    by_protocol = {}
    for record in counts["records"]:
        by_protocol[record["protocol_name"]] = by_protocol.get(record["protocol_name"], 0) + 1
    assert set(by_protocol) == {"human debate", "AI debate", "human consultancy", "AI consultancy"}
    for name, count in by_protocol.items():  # --protocol splits them
        call_command("export_verdicts", str(tmp_path / name), "--protocol", name, verbosity=0)
        assert len((tmp_path / name / export.JSONL_NAME).read_text().splitlines()) == count
        assert f"Protocol `{name}`: {count:,} verdicts" in (tmp_path / name / export.DATASHEET_NAME).read_text()
    from judging import analysis  # the reproduction's counts print as integers

    reproduction = analysis.nyu_reproduction(n_boot=200)
    rows = {row["group"]: row for row in reproduction.rows}
    assert (rows["human debate"]["correct"], rows["human debate"]["judgments"]) == (130, 154)
    assert "human debate,130,154," in reproduction.csv() and "130.0" not in reproduction.csv()
    with capsys.disabled():
        print(
            f"\nNYU export: {total} verdicts; jsonl {counts['jsonl']}, parquet {counts['parquet']}, csv "
            f"{counts['csv']} rows; {len(counts['records'])} records validated; {len(quotes)} quotes; "
            f"by protocol {by_protocol}"
        )


@pytest.mark.postgresql
def test_khan_debates_export_in_every_format_and_validate(db, tmp_path):
    call_command("import_quality", str(DATA / "quality" / "good.jsonl"), verbosity=0)
    call_command("import_khan", str(DATA / "khan" / "judged.csv"), verbosity=0)
    counts = export_everything(tmp_path, source="khan-2024-llm-debate", include_hidden=True)
    assert counts["jsonl"] == 3
    assert all(r["question"]["hidden_material"] for r in counts["records"])  # the shared story
    _booleans_are_words(counts["csv_tables"])


QUALITY_STUDY = study_file(
    "Quality in the export",
    "quality-unit",
    pool=("qdeb1", "qdeb2"),
    study="""\
        platform: prolific
        gold:
          debates: [GOLD]
          rate: 1
    """,
)


@pytest.mark.postgresql
def test_hidden_time_and_the_judges_quality_are_in_every_format(db, make_user, tmp_path):
    """A screened-out crowd judge's study verdict (page hidden 12.5 s) and gold verdict carry the
    quality figures; a judge outside any study has none. PostgreSQL's SQL and the Python records of
    the embedded default agree."""
    from debates import services
    from judging import crowd, offline
    from judging.models import Assignment, StudyParticipant
    from judging.services import submit_verdict
    from tests.factories import VerdictFactory, dataset_questions, started_study

    gold = VerdictFactory().debate
    owner = make_user("quinn", "researcher")
    make_user("qdeb1", "debater")
    make_user("qdeb2", "debater")
    dataset_questions("quality-unit", 1, text="Only question?")
    study = started_study(owner, QUALITY_STUDY.replace("GOLD", str(gold.pk)))
    participant = crowd.enter(study, crowd.Entry("prolific", "QUALITY1"))
    debate = crowd.seat_judge(participant, crowd.study_version(study))
    for seat in ("A", "B"):  # seating the judge started it
        services.submit_action(debate.pk, debate.participants.get(seat=seat).user, kind="speech", text="Argued.")
    verdict, _ = submit_verdict(debate.pk, participant.user, [0.7, 0.3], "Judged.")
    Verdict.objects.filter(pk=verdict.pk).update(hidden_seconds=12.5)
    assignment = offline.assign(gold.pk, participant.user, Assignment.ALL_AT_ONCE)
    right = gold.shown_answer_order().index(gold.question.correct_index)
    offline.submit_offline_verdict(
        assignment.pk, participant.user, [0.2 if i == right else 0.8 for i in range(2)], "Wrong on purpose."
    )
    StudyParticipant.objects.filter(pk=participant.pk).update(
        status="screened_out", outcome="failed_checks", quiz_attempts=2, responses={"practice": {"correct": False}}
    )

    counts = export_everything(tmp_path)  # validates every JSONL record against the JSON Schema
    own = [r for r in counts["records"] if r["debate_id"] == debate.pk][0]
    checked = [r for r in counts["records"] if r["debate_id"] == gold.pk and r["quality"] is not None][0]
    outside = [r for r in counts["records"] if r["debate_id"] == gold.pk and r["quality"] is None]
    expected = {
        "study_status": "screened_out",
        "study_outcome": "failed_checks",
        "excluded": True,
        "gold_judged": 1,
        "gold_correct": 0,
        "practice_correct": False,
        "quiz_attempts": 2,
    }
    assert own["hidden_seconds"] == 12.5 and own["quality"] == dict(expected, gold_check=False)
    assert checked["quality"] == dict(expected, gold_check=True) and checked["hidden_seconds"] is None
    assert len(outside) == 1  # the gold debate's own live judge is in no study
    python = {
        r["verdict_id"]: (r["hidden_seconds"], r["quality"]) for r in export.python_records(export.ExportOptions())
    }
    assert python == {r["verdict_id"]: (r["hidden_seconds"], r["quality"]) for r in counts["records"]}
    rows = {row["verdict_id"]: row for row in counts["csv_tables"]["judgments"]}
    assert rows[str(own["verdict_id"])]["hidden_seconds"] == "12.5"
    assert (
        rows[str(own["verdict_id"])]["excluded"] == "true" and rows[str(checked["verdict_id"])]["gold_check"] == "true"
    )
    table = counts["parquet_table"].to_pylist()
    assert {r["verdict_id"]: r["quality"] for r in table} == {r["verdict_id"]: r["quality"] for r in counts["records"]}
    # The hidden time comes back on re-import (the quality figures belong to the study, not the verdict).
    line = next(
        raw
        for raw in (tmp_path / "jsonl" / export.JSONL_NAME).read_bytes().splitlines()
        if json.loads(raw)["verdict_id"] == own["verdict_id"]
    )
    import_dataset([line], owner=owner)
    assert Verdict.objects.exclude(pk=own["verdict_id"]).filter(hidden_seconds=12.5).count() == 1
