"""Importers for the field's datasets, on small files written for these tests from the documented
formats (nyu-mll/quality README; ucl-dark/llm_debate data/dataset_readme.md): QuALITY (stories
stored once, HTML to text, 1-based labels, bad labels refused with their lines) and Khan et al.
2024 judged debates (swap to answer order, quotes checked again, best-of-N candidates kept, judge
confidences to verdicts under the dataset's rule)."""

import json
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from debates import snapshots
from debates.importers.khan_format import SOURCE as KHAN, TIE_RULE as KHAN_RULE, KhanFileError, plan_rows, read_rows
from debates.importers.quality_format import QualityFileError, html_to_text, read_quality
from debates.models import Debate, Question, Story
from debates.protocol import JUDGE
from judging import export
from judging.khan_import import _StoryFinder
from judging.models import Verdict

DATA = Path(__file__).resolve().parent / "data"
QUALITY = DATA / "quality" / "good.jsonl"
KHAN_FILE = DATA / "khan" / "judged.csv"


def run(*args):
    from io import StringIO

    out, err = StringIO(), StringIO()
    call_command(*map(str, args), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_html_articles_become_paragraphs_of_plain_text():
    text = html_to_text(
        "<html><head><title>T</title></head><body><p>One&nbsp;two\n  three.</p>"
        "<p>Four<br/>five &amp; six.</p></body></html>"
    )
    assert text == "T\n\nOne two three.\n\nFour\n\nfive & six."


def test_out_of_range_and_ambiguous_labels_refuse_the_file_with_their_lines():
    with pytest.raises(QualityFileError) as refused:
        read_quality((DATA / "quality" / "bad_labels.jsonl").read_text().splitlines())
    problems = dict(refused.value.problems)
    assert "gold_label 0 is out of range" in problems[1] and "0-based" in problems[1]
    assert "gold_label '3' is ambiguous" in problems[2]
    assert "gold_label 5 is out of range" in problems[3]
    line = json.loads(QUALITY.read_text().splitlines()[0])
    line["questions"][0]["options"] = ["Three", "Three", "One", "None"]
    with pytest.raises(QualityFileError, match="line 1: question 1: gold_label 2 is ambiguous: its option text"):
        read_quality([json.dumps(line)])
    del line["questions"][0]["gold_label"]
    with pytest.raises(QualityFileError, match="no gold_label"):
        read_quality([json.dumps(line)])


def test_quality_stores_each_story_once_for_many_questions(db):
    out, _ = run("import_quality", QUALITY)
    assert "2 new stories" in out and "4 new questions" in out
    orchard = Story.objects.get(source="quality", external_id="90001")
    assert orchard.questions.count() == 3  # two writers' question sets share one story
    assert "<" not in orchard.text and "forty-one apple, three pear" in orchard.text
    pears = Question.objects.get(source="quality", text="How many pear trees did Mara count?")
    assert pears.answers[pears.correct_index] == "Three"  # gold_label 2 -> index 1
    assert pears.hidden_material == "" and pears.passage == orchard.text
    assert pears.metadata["gold_label"] == 2 and pears.metadata["set_unique_id"] == "90001_W1"
    walnut = Question.objects.get(source="quality", external_id="90001_W2_1")
    assert walnut.answers[walnut.correct_index] == "The walnut" and walnut.story_id == orchard.pk
    again, _ = run("import_quality", QUALITY)
    assert "0 new stories (2 stored before)" in again and Question.objects.filter(source="quality").count() == 4
    counts = (Story.objects.count(), Question.objects.count())
    with pytest.raises(CommandError, match="3 problem"):
        run("import_quality", DATA / "quality" / "bad_labels.jsonl")
    assert (Story.objects.count(), Question.objects.count()) == counts


@pytest.fixture
def khan(db):
    run("import_quality", QUALITY)
    out, _ = run("import_khan", KHAN_FILE)
    return out


def test_khan_rows_become_debates_with_their_answer_order_seats_and_turns(khan):
    assert "Imported 3 judged debate(s)" in khan
    plain = Debate.objects.get(source=KHAN, external_id="d-1/7")
    question = plain.question
    assert question.answers == ["Three", "Forty-one"] and question.correct_index == 0
    assert question.story == Story.objects.get(external_id="90001")  # the story is the stored one
    assert plain.answer_order == [0, 1]  # swap False: the correct answer in position A
    seats = {p.seat: p.answer_index for p in plain.participants.exclude(seat=JUDGE)}
    assert seats == {"A": 0, "B": 1} and plain.protocol_name == "debate"
    swapped = Debate.objects.get(source=KHAN, external_id="d-2/12")
    assert swapped.answer_order == [1, 0]
    assert {p.seat: p.answer_index for p in swapped.participants.exclude(seat=JUDGE)} == {"A": 1, "B": 0}
    assert swapped.protocol_name == "interactive debate"
    turns = list(swapped.turns.order_by("id").values_list("round_index", "seat", "kind"))
    assert turns == [(0, "B", "speech"), (1, JUDGE, "feedback"), (2, "A", "speech")]
    assert swapped.get_protocol().rounds == ("sequential", "judge_feedback", "sequential")
    consultancy = Debate.objects.get(source=KHAN, external_id="c-1/7")
    assert {p.seat: p.answer_index for p in consultancy.participants.exclude(seat=JUDGE)} == {"A": 1}
    assert consultancy.question.story.external_id == "90002"


def test_khan_quotes_are_checked_again_and_candidates_kept(khan):
    debate = Debate.objects.get(source=KHAN, external_id="d-1/7")
    first_a, first_b, second_a, second_b = debate.turns.order_by("id")
    assert [q["status"] for q in first_a.payload["quotes"]] == ["verified"]
    assert [q["status"] for q in first_b.payload["quotes"]] == ["unverified"]  # the story never says it
    assert "<v_quote>" in second_a.payload["source_text"] and "<quote>" in second_a.text
    assert [q["status"] for q in second_a.payload["quotes"]] == ["unverified"]
    assert [c["rating"] for c in first_a.payload["candidates"]] == [0.2, 0.9]
    assert len(first_b.payload["candidates"]) == 2 and "candidates" not in second_a.payload
    # the judge's view shows the checked quotes and never the story
    state = snapshots.state_for(debate, snapshots.Viewer(snapshots.JUDGE_VIEW, None))
    assert "hidden" not in state or not state.get("hidden")
    assert {q["status"] for q in state["quotes"]} == {"verified", "unverified"}


def test_khan_confidences_become_verdicts_under_the_datasets_rule(khan):
    by_debate = {v.debate.external_id: v for v in Verdict.objects.filter(debate__source=KHAN).select_related("debate")}
    plain, swapped, consultancy = by_debate["d-1/7"], by_debate["d-2/12"], by_debate["c-1/7"]
    assert plain.probabilities == [0.8, pytest.approx(0.2)] and plain.correct and plain.chosen_index == 0
    assert swapped.probabilities == [0.3, 0.7] and not swapped.correct and swapped.chosen_index == 1  # a percentage
    assert consultancy.probabilities == [0.65, pytest.approx(0.35)] and consultancy.correct
    assert {v.provenance["tie_rule"] for v in by_debate.values()} == {KHAN_RULE}
    assert plain.judge.username == "khan:judge-7" and plain.judge == consultancy.judge
    assert not plain.judge.is_active and not plain.judge.has_usable_password()
    assert plain.reason == "A's quote lists three pear trees."
    again, _ = run("import_khan", KHAN_FILE)
    assert "Imported 0 judged debate(s) (3 imported before)" in again
    # and they export like every other verdict
    records = [json.loads(line) for line in export.jsonl_lines(export.ExportOptions(source=KHAN, include_hidden=True))]
    assert len(records) == 3 and all(r["question"]["hidden_material"] for r in records)


def test_a_bad_khan_file_is_refused_with_its_lines_and_changes_nothing(db):
    run("import_quality", QUALITY)
    counts = (Debate.objects.count(), Verdict.objects.count(), User.objects.count())
    with pytest.raises(CommandError, match="3 problem"):
        run("import_khan", DATA / "khan" / "bad.csv")
    assert (Debate.objects.count(), Verdict.objects.count(), User.objects.count()) == counts
    with pytest.raises(KhanFileError) as refused:
        plan_rows(read_rows((DATA / "khan" / "bad.csv").read_text(), "csv"), _StoryFinder("quality").text)
    problems = refused.value.problems
    assert [line for line, _ in problems] == [2, 3, 4]  # the CSV's lines, header first
    assert "no QuALITY story for question set 99999_W9" in problems[0][1] and "import_quality" in problems[0][1]
    assert "confidence_correct 'very' is not a number" in problems[1][1]
    assert "debate_method 'oracle'" in problems[2][1]
