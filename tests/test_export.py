"""Verdict dataset exports: record contents, pseudonyms, hidden material, the loaders, CSV and
Parquet, the datasheet, the streaming download, and the round trip back into an empty DebateLab."""

import csv
import hashlib
import hmac
import io
import json
import tracemalloc
import zipfile

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import AsyncClient
from django.urls import reverse

from debates.models import Debate, Experiment, ExperimentVersion, Participant, Question, Turn
from judging import export
from tests import synthetic
from judging.models import Verdict
from judging.reimport import ImportRefused, import_dataset

from .verdict_data import PASSAGE, experiment_fixtures


shared, owner, experiment = experiment_fixtures(seed=11, questions=2, judges=2)


def _records(options):
    return [json.loads(line) for line in export.jsonl_lines(options)]


def test_one_record_per_verdict_with_the_full_transcript(experiment):
    options = export.ExportOptions(experiment_ids=[experiment.pk])
    records = _records(options)
    verdicts = Verdict.objects.filter(debate__experiment_version__experiment=experiment).order_by("id")
    assert [r["verdict_id"] for r in records] == [v.pk for v in verdicts]
    for record, verdict in zip(records, verdicts):
        debate = verdict.debate
        turns = list(Turn.objects.filter(debate=debate).order_by("id"))
        assert [(t["round"], t["seat"], t["kind"], t["text"]) for t in record["turns"]] == [
            (t.round_index, t.seat, t.kind, t.text) for t in turns
        ]
        reports = [t["probabilities"] for t in record["turns"] if t["kind"] == "feedback"]
        assert reports == [t.probabilities for t in turns if t.kind == "feedback"] and reports
        quoted = [q for t in record["turns"] for q in t["quotes"] or []]
        assert quoted and all(q["status"] == "verified" for q in quoted)
        assert record["probabilities"] == verdict.probabilities
        assert record["p_correct"] == verdict.probabilities[debate.question.correct_index]
        assert (record["correct"], record["score"], record["reason"]) == (
            verdict.correct,
            verdict.score,
            verdict.reason,
        )
        assert record["experiment_version"] == 1 and record["protocol_name"] == debate.protocol_name
        assert json.loads(record["debate_provenance_json"]) == debate.provenance
        assert record["code_version"] == "test"
        assert {p["seat"] for p in record["participants"]} == set(
            Participant.objects.filter(debate=debate).values_list("seat", flat=True)
        )


def test_identities_are_pseudonymised_with_a_per_export_key(experiment):
    options = export.ExportOptions(experiment_ids=[experiment.pk])
    text = b"".join(export.jsonl_lines(options)).decode()
    for username in User.objects.values_list("username", flat=True):
        assert f'"{username}"' not in text
    record = json.loads(text.splitlines()[0])
    verdict = Verdict.objects.get(pk=record["verdict_id"])
    expected = "u-" + hmac.new(options.key, str(verdict.judge_id).encode(), hashlib.sha256).hexdigest()[:16]
    assert record["judge"] == expected == export.pseudonym(verdict.judge_id, options.key)
    judge_seat = next(p for p in record["participants"] if p["seat"] == "judge")
    assert judge_seat["participant"] == record["judge"]
    again = _records(export.ExportOptions(experiment_ids=[experiment.pk]))[0]
    assert again["judge"] != record["judge"]  # a new export, a new key

    named = _records(export.ExportOptions(experiment_ids=[experiment.pk], identities=True))[0]
    assert named["judge"] == verdict.judge.username


def test_hidden_material_only_when_asked(experiment):
    hidden_left_out = _records(export.ExportOptions(experiment_ids=[experiment.pk]))
    assert all(r["question"]["hidden_material"] is None for r in hidden_left_out)
    assert all(t["private_note"] is None for r in hidden_left_out for t in r["turns"])
    assert PASSAGE not in json.dumps(hidden_left_out)
    included = _records(export.ExportOptions(experiment_ids=[experiment.pk], include_hidden=True))
    assert all(r["question"]["hidden_material"] == PASSAGE for r in included)
    assert any(t["private_note"] for r in included for t in r["turns"])


def test_jsonl_loads_with_pandas_and_hugging_face_datasets(experiment, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    call_command("export_verdicts", str(tmp_path / "out"), "--experiment", str(experiment.pk), verbosity=0)
    path = tmp_path / "out" / export.JSONL_NAME
    count = Verdict.objects.filter(debate__experiment_version__experiment=experiment).count()

    import pandas

    frame = pandas.read_json(path, lines=True)
    assert len(frame) == count
    assert {f.name for f in export.RECORD_FIELDS} == set(frame.columns)
    assert frame["correct"].dtype == bool

    import datasets

    dataset = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache"))
    assert dataset.num_rows == count
    assert set(dataset.column_names) == set(frame.columns)
    first = dataset[0]
    assert first["turns"][0]["quotes"][0]["status"] == "verified"
    assert first["verdict_id"] == int(frame["verdict_id"][0])


def test_parquet_has_the_declared_schema(experiment, tmp_path):
    import pyarrow.parquet as pq

    call_command(
        "export_verdicts",
        str(tmp_path),
        "--experiment",
        str(experiment.pk),
        "--format",
        "parquet",
        "--include-hidden",
        verbosity=0,
    )
    table = pq.read_table(tmp_path / export.PARQUET_NAME)
    assert table.schema.equals(export.arrow_schema())
    records = _records(export.ExportOptions(experiment_ids=[experiment.pk], include_hidden=True))
    assert table.num_rows == len(records)
    assert table.column("verdict_id").to_pylist() == [r["verdict_id"] for r in records]
    assert table.column("turns").to_pylist()[0][0]["text"] == records[0]["turns"][0]["text"]


@pytest.mark.postgresql
def test_csv_tables_are_tidy_and_consistent(experiment, tmp_path):
    call_command("export_verdicts", str(tmp_path), "--experiment", str(experiment.pk), "--format", "csv", verbosity=0)
    tables = {name: list(csv.DictReader(open(tmp_path / f"{name}.csv", newline=""))) for name in export.CSV_TABLES}
    debates = Debate.objects.filter(experiment_version__experiment=experiment)
    assert len(tables["debates"]) == debates.count()
    assert len(tables["turns"]) == Turn.objects.filter(debate__in=debates).count()
    assert len(tables["participants"]) == Participant.objects.filter(debate__in=debates).count()
    assert len(tables["judgments"]) == Verdict.objects.filter(debate__in=debates).count()
    seats = {(r["debate_id"], r["seat"]): r["participant"] for r in tables["participants"]}
    for judgment in tables["judgments"]:
        if judgment["judge_kind"] == "human":
            assert seats[(judgment["debate_id"], "judge")] == judgment["judge"]
    assert all(r["hidden_material"] == "" for r in tables["debates"])
    verified = sum(int(r["quotes_verified"]) for r in tables["turns"])
    assert verified == sum(
        1
        for t in Turn.objects.filter(debate__in=debates)
        for q in t.payload.get("quotes", [])
        if q["status"] == "verified"
    )


def test_datasheet_describes_every_field_and_the_counts(experiment, tmp_path):
    call_command("export_verdicts", str(tmp_path), "--experiment", str(experiment.pk), verbosity=0)
    sheet = (tmp_path / export.DATASHEET_NAME).read_text()
    count = Verdict.objects.filter(debate__experiment_version__experiment=experiment).count()
    assert f"{count:,} verdicts" in sheet
    for name in (
        "verdict_id",
        "turns[].quotes[].status",
        "question.hidden_material",
        "participants[].honest",
        "hidden_seconds",
        "quality.excluded",
        "quality.gold_check",
    ):
        assert f"`{name}`" in sheet
    assert "Licence" in sheet and "CC-BY-4.0" in sheet and "pseudonyms" in sheet
    assert f"experiments: {experiment.pk}" in sheet and "counterbalancing seed 11" in sheet
    versions = [json.loads(line) for line in (tmp_path / export.VERSIONS_NAME).read_text().splitlines()]
    assert [v["number"] for v in versions] == [1]


def _snapshot():
    """Everything a verdict dataset holds, keyed by content rather than by database ids."""

    def username(u):
        return u.username if u else None

    questions = {
        q.pk: (
            q.kind,
            q.title,
            q.text,
            q.answers,
            q.correct_index,
            q.public_material,
            q.hidden_material,
            q.hidden_image,
            q.source,
            q.external_id,
            q.metadata,
            q.created_at,
        )
        for q in Question.objects.all()
    }
    versions = {
        v.pk: (
            v.experiment.name,
            v.experiment.created_at,
            v.number,
            v.definition,
            v.source_text,
            v.source_name,
            v.frozen_at,
            v.code_version,
            v.created_at,
        )
        for v in ExperimentVersion.objects.select_related("experiment")
    }
    debates = []
    for d in Debate.objects.filter(verdicts__isnull=False).distinct().order_by("created_at", "id"):
        debates.append(
            {
                "debate": (
                    questions[d.question_id],
                    versions.get(d.experiment_version_id),
                    d.protocol_name,
                    d.protocol,
                    d.status,
                    d.answer_order,
                    d.last_seq,
                    d.turn_deadline,
                    d.source,
                    d.external_id,
                    d.provenance,
                    username(d.created_by),
                    d.created_at,
                    d.started_at,
                    d.ended_at,
                ),
                "participants": sorted(
                    (p.seat, username(p.user), p.answer_index, p.alias, json.dumps(p.agent))
                    for p in d.participants.all()
                ),
                "turns": [
                    (
                        t.round_index,
                        t.seat,
                        t.kind,
                        t.text,
                        t.probabilities,
                        t.end_debate,
                        t.private_note,
                        t.payload,
                        t.client_id,
                        username(t.author),
                        t.created_at,
                    )
                    for t in d.turns.order_by("id")
                ],
                "verdicts": [
                    (
                        username(v.judge),
                        v.judge_kind,
                        v.ai_judge,
                        v.live,
                        v.probabilities,
                        v.chosen_index,
                        v.correct,
                        v.reason,
                        v.seconds_spent,
                        v.after_turn,
                        v.after_seq,
                        v.scoring_rule,
                        v.score,
                        v.client_id,
                        v.provenance,
                        v.created_at,
                    )
                    for v in d.verdicts.order_by("id")
                ],
            }
        )
    return debates


def test_round_trip_into_an_empty_debatelab(experiment, owner, tmp_path):
    before = _snapshot()
    assert sum(len(d["turns"]) for d in before) > 0 and len(before) == Debate.objects.count()
    call_command("export_verdicts", str(tmp_path), "--include-hidden", "--identities", verbosity=0)
    owner_name = owner.username
    Verdict.objects.all().delete()
    Debate.objects.all().delete()
    Question.objects.all().delete()
    Experiment.objects.all().delete()
    User.objects.all().delete()
    assert not Debate.objects.exists() and not User.objects.exists()
    importer = User.objects.create_user(owner_name)
    call_command("import_export", str(tmp_path), "--owner", importer.username, verbosity=0)
    after = _snapshot()
    assert len(after) == len(before)
    for old, new in zip(before, after):
        assert new["debate"] == old["debate"]
        assert new["participants"] == old["participants"]
        assert new["turns"] == old["turns"]
        assert new["verdicts"] == old["verdicts"]


def test_import_refuses_bad_files_and_changes_nothing(experiment, tmp_path):
    lines = list(export.jsonl_lines(export.ExportOptions(experiment_ids=[experiment.pk], identities=True)))
    counts = (Debate.objects.count(), Verdict.objects.count(), Question.objects.count())
    with pytest.raises(ImportRefused, match="line 2: not valid JSON"):
        import_dataset([lines[0], b"{broken", *lines[2:]], owner=None)
    with pytest.raises(ImportRefused, match="line 1: missing turns"):
        import_dataset([json.dumps({k: v for k, v in json.loads(lines[0]).items() if k != "turns"})])
    with pytest.raises(ImportRefused, match="name an owner"):
        import_dataset(lines, owner=None)
    assert (Debate.objects.count(), Verdict.objects.count(), Question.objects.count()) == counts
    with pytest.raises(CommandError, match="does not exist"):
        call_command("import_export", str(tmp_path / "nothing"), verbosity=0)


def test_export_command_filters_and_refuses_bad_keys(experiment, tmp_path):
    call_command(
        "export_verdicts",
        str(tmp_path),
        "--experiment",
        str(experiment.pk),
        "--protocol",
        "consultancy",
        "--judge-kind",
        "human",
        verbosity=0,
    )
    records = [json.loads(line) for line in (tmp_path / export.JSONL_NAME).read_text().splitlines()]
    assert records and {(r["protocol_name"], r["judge_kind"]) for r in records} == {("consultancy", "human")}
    with pytest.raises(CommandError, match="hexadecimal"):
        call_command("export_verdicts", str(tmp_path), "--key", "not-hex", verbosity=0)


# ---------------------------------------------------------------------------------------------
# Streaming download


@pytest.fixture
def many_verdicts(db, owner):
    return synthetic.generate(5_000, owner=owner, seed=2)


def _zip_members(content: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.mark.postgresql
def test_download_streams_with_constant_memory(client, owner, many_verdicts):
    client.force_login(owner)
    response = client.get(reverse("experiment_export", args=[many_verdicts.pk, "jsonl"]))
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/zip"
    tracemalloc.start()
    chunks, received = 0, io.BytesIO()
    for chunk in response.streaming_content:
        chunks += 1
        received.write(chunk)
        if chunks == 3:
            tracemalloc.reset_peak()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    members = _zip_members(received.getvalue())
    lines = members[export.JSONL_NAME].splitlines()
    assert len(lines) == 5_000 and chunks > 10
    # What Python holds while streaming stays near one chunk, whatever the export's size.
    assert peak < len(members[export.JSONL_NAME]) / 5
    assert b"5,000 verdicts" in members[export.DATASHEET_NAME]


@pytest.mark.postgresql
def test_download_streams_under_asgi(owner, many_verdicts):
    client = AsyncClient()

    async def fetch():
        await client.aforce_login(owner)
        response = await client.get(reverse("experiment_export", args=[many_verdicts.pk, "csv"]))
        assert response.is_async
        return response.status_code, b"".join([chunk async for chunk in response.streaming_content])

    status, content = async_to_sync(fetch)()
    assert status == 200
    members = _zip_members(content)
    judgments = list(csv.DictReader(io.StringIO(members["judgments.csv"].decode())))
    assert len(judgments) == 5_000


def test_identities_need_the_permission(client, owner, experiment):
    client.force_login(owner)
    url = reverse("experiment_export", args=[experiment.pk, "jsonl"])
    assert client.get(url + "?identities=1").status_code == 403
    owner.user_permissions.add(Permission.objects.get(codename="export_identities"))
    owner = User.objects.get(pk=owner.pk)  # permissions are cached per user object
    client.force_login(owner)
    response = client.get(url + "?identities=1&hidden=1")
    assert response.status_code == 200
    text = _zip_members(b"".join(response.streaming_content))[export.JSONL_NAME].decode()
    judge = Verdict.objects.filter(debate__experiment_version__experiment=experiment, judge__isnull=False).first().judge
    assert f'"{judge.username}"' in text and PASSAGE in text
    assert client.get(reverse("experiment_export", args=[experiment.pk, "xml"])).status_code == 400


def test_records_built_in_python_match_the_database_built_ones(experiment):
    """The embedded default (SQLite) exports through python_records; on PostgreSQL both ways must
    give the same records. Times may print their fractions differently, JSON text its spacing, so
    those are compared parsed."""
    from datetime import datetime

    def normalised(value, key=""):
        if isinstance(value, dict):
            return {k: normalised(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [normalised(v) for v in value]
        if isinstance(value, str) and (key.endswith("_at") or key == "turn_deadline"):
            return datetime.fromisoformat(value)
        if isinstance(value, str) and key.endswith("_json"):
            return json.loads(value)
        return value

    for options in (
        export.ExportOptions(experiment_ids=[experiment.pk], include_hidden=True),
        export.ExportOptions(experiment_ids=[experiment.pk], identities=True),
    ):
        from_sql = _records(options)
        from_python = list(export.python_records(options, chunk=7))
        assert len(from_python) == len(from_sql)
        for a, b in zip(from_sql, from_python):
            assert list(a) == list(b)
            assert normalised(a) == normalised(b)
    page = export.records(
        export.ExportOptions(experiment_ids=[experiment.pk]), after_id=from_sql[2]["verdict_id"], limit=3
    )
    python_page = list(
        export.python_records(
            export.ExportOptions(experiment_ids=[experiment.pk]), after_id=from_sql[2]["verdict_id"], limit=3
        )
    )
    assert (
        [r["verdict_id"] for r in page]
        == [r["verdict_id"] for r in python_page]
        == [r["verdict_id"] for r in from_sql[3:6]]
    )
