"""Importers: question files (JSONL, CSV) and the NYU debate dataset, into the real database."""
import json
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from debates.models import Debate, Question

DATA = Path(__file__).resolve().parent / "data"
QUESTIONS = DATA / "questions"


def run(command, *args, **options):
    out, err = StringIO(), StringIO()
    call_command(command, *[str(a) for a in args], stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def failing(command, *args, **options):
    err = StringIO()
    with pytest.raises(CommandError) as failure:
        call_command(command, *[str(a) for a in args], stdout=StringIO(), stderr=err, **options)
    return str(failure.value), err.getvalue()


# Question files ---------------------------------------------------------------------------------


def test_a_good_jsonl_file_imports_every_field(db):
    out, _ = run("import_questions", QUESTIONS / "good.jsonl")

    assert "2 new, 0 updated, 0 unchanged" in out
    lighthouse = Question.objects.get(source="test-set", external_id="lighthouse-1")
    assert lighthouse.text == "Why does the keeper leave the lamp dark?"
    assert lighthouse.answers == ["To hide the island from raiders", "Because the oil ran out"]
    assert lighthouse.correct_index == 0
    assert lighthouse.hidden_material.startswith("The keeper let the lamp go dark")
    assert lighthouse.public_material == "A lighthouse keeper on a remote island."
    assert lighthouse.title == "The Dark Lamp"
    assert lighthouse.metadata == {"difficulty": "easy"}
    assert Question.objects.get(source="test-set", external_id="2").correct_index == 2


def test_reimporting_the_same_file_changes_nothing(db):
    run("import_questions", QUESTIONS / "good.jsonl")
    before = {q.pk: (q.text, q.answers, q.metadata) for q in Question.objects.all()}

    out, _ = run("import_questions", QUESTIONS / "good.jsonl")

    assert "0 new, 0 updated, 2 unchanged" in out
    assert {q.pk: (q.text, q.answers, q.metadata) for q in Question.objects.all()} == before


def test_a_changed_row_updates_its_question_once(db, tmp_path):
    run("import_questions", QUESTIONS / "good.jsonl")
    changed = tmp_path / "changed.jsonl"
    changed.write_text(QUESTIONS.joinpath("good.jsonl").read_text().replace("What colour is the boat?",
                                                                            "What colour is the sail?"))

    first, _ = run("import_questions", changed)
    second, _ = run("import_questions", changed)

    assert "0 new, 1 updated, 1 unchanged" in first
    assert "0 new, 0 updated, 2 unchanged" in second
    assert Question.objects.get(source="test-set", external_id="2").text == "What colour is the sail?"
    assert Question.objects.count() == 2


def test_a_question_with_debates_is_never_changed(db, tmp_path, make_user):
    from debates import services
    from debates.protocol import Protocol

    run("import_questions", QUESTIONS / "good.jsonl")
    boat = Question.objects.get(source="test-set", external_id="2")
    services.create_debate(boat, Protocol(), {"A": (make_user("ann"), 0), "B": (make_user("ben"), 2)}, seed=1)
    changed = tmp_path / "changed.jsonl"
    changed.write_text(QUESTIONS.joinpath("good.jsonl").read_text().replace('"correct_index": 2', '"correct_index": 0'))

    message, errors = failing("import_questions", changed)

    assert "nothing was imported" in message
    assert "line 3: id: question '2' (source 'test-set') already has debates" in errors
    boat.refresh_from_db()
    assert boat.correct_index == 2


def test_a_broken_jsonl_file_reports_each_bad_line_and_imports_nothing(db):
    message, errors = failing("import_questions", QUESTIONS / "bad.jsonl")

    assert "nothing was imported" in message
    assert "line 2: answers: give at least two answers (found 1)" in errors
    assert "line 3: correct_index: 2 is not an answer position" in errors
    assert "line 4: not valid JSON" in errors
    assert "line 5: id: 'ok-1' (source 'test-set') already appears on line 1" in errors
    assert "line 6: unknown field(s): correct_answer" in errors
    assert "line 1:" not in errors and "line 7:" not in errors
    assert Question.objects.count() == 0


def test_skip_invalid_imports_the_good_rows_and_reports_the_others(db):
    out, errors = run("import_questions", QUESTIONS / "bad.jsonl", skip_invalid=True)

    assert "2 new" in out and "skipped 5 row(s)" in out
    assert sorted(Question.objects.values_list("external_id", flat=True)) == ["ok-1", "ok-2"]
    assert Question.objects.get(external_id="ok-1").text == "Fine question?"  # the first of the two ok-1 rows
    assert "line 4: not valid JSON" in errors


def test_dry_run_checks_and_counts_without_writing(db):
    out, _ = run("import_questions", QUESTIONS / "good.jsonl", dry_run=True)

    assert "would import 2 new" in out
    assert Question.objects.count() == 0


def test_csv_with_numbered_answer_columns_and_a_default_source(db):
    out, _ = run("import_questions", QUESTIONS / "good_answer_columns.csv", source="letters")

    assert "2 new" in out
    letter = Question.objects.get(source="letters", external_id="c-1")
    assert letter.answers == ["The mayor", "The baker"]  # the empty answer_3 cell is no answer
    assert letter.correct_index == 1
    assert letter.hidden_material == "The baker wrote it.\nOn two lines."
    assert letter.metadata == {"year": 1921}
    assert Question.objects.get(source="letters", external_id="c-2").answers == ["North", "South", "East"]


def test_csv_with_a_json_answers_column(db):
    run("import_questions", QUESTIONS / "good_answers_json.csv")

    assert Question.objects.get(source="csv-json", external_id="j-1").answers == ["Yes", "No"]


def test_csv_rows_without_any_source_are_errors(db):
    _, errors = failing("import_questions", QUESTIONS / "good_answer_columns.csv")

    assert "line 2: source: missing" in errors and "line 4: source: missing" in errors
    assert Question.objects.count() == 0


def test_a_broken_csv_file_reports_the_line_each_row_starts_on(db):
    message, errors = failing("import_questions", QUESTIONS / "bad.csv", source="s")

    assert "nothing was imported" in message
    assert "line 3: correct_index: must be a whole number counted from 0, not 'first'" in errors
    assert "line 4: metadata: not valid JSON" in errors
    assert "line 5: answers: answer 1 must be non-empty text" in errors
    assert "line 7: the row has 7 cells but the header has 6" in errors
    assert Question.objects.count() == 0

    out, _ = run("import_questions", QUESTIONS / "bad.csv", source="s", skip_invalid=True)
    assert sorted(Question.objects.values_list("external_id", flat=True)) == ["b-1", "b-5"]


def test_a_bad_csv_header_stops_the_import_even_when_skipping_invalid_rows(db):
    message, errors = failing("import_questions", QUESTIONS / "bad_header.csv", source="s", skip_invalid=True)

    assert "line 1: unknown column(s): colour" in errors
    assert "line 1: answers: answer columns must be numbered answer_1, answer_2, ... without gaps" in errors
    assert "no valid rows" in message
    assert Question.objects.count() == 0


def test_a_file_with_an_unknown_extension_needs_a_format(db, tmp_path):
    odd = tmp_path / "questions.txt"
    shutil.copy(QUESTIONS / "good.jsonl", odd)

    message, _ = failing("import_questions", odd)
    assert "cannot tell the format" in message

    run("import_questions", odd, format="jsonl")
    assert Question.objects.count() == 2
