from collections import Counter

import pytest

from debates.experiment_spec import SpecError, counterbalanced_plan, parse
from debates.experiments import load_experiment, start_experiment
from debates.models import Debate, Question
from debates.protocol import Refused

GOOD = """
name: Debate vs consultancy
dataset:
  source: unit
protocols:
  - name: debate
    format: debate
    rounds: [simultaneous, judge_feedback, sequential]
  - name: consultancy
    format: consultancy
debaters:
  kind: ai
  backend: scripted
judges:
  kind: human
  pool: [judge1, judge2]
counterbalance:
  seed: 11
"""


def test_it_reads_a_definition_with_defaults():
    definition = parse(GOOD)
    assert [p["name"] for p in definition["protocols"]] == ["debate", "consultancy"]
    assert definition["protocols"][1]["protocol"]["debaters"] == ["A"]
    assert definition["blinding"] == {"aliases": True, "reveal_after_verdict": False}


def test_json_definitions_are_read_too():
    assert parse('{"name": "x", "dataset": {"source": "s"}, "protocols": [{"name": "d"}]}')["name"] == "x"


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "name: x\ndataset:\n  source: s\nprotocols:\n  - name: d\n    format: debat\n",
            "line 6: protocols[0].format: must be one of",
        ),
        ("name: x\ndataset:\n  source: s\nprotocols: []\n", "line 4: protocols: must be a non-empty list"),
        ("name: x\ndataset:\n  source: s\nprotocols:\n  - name: d\ncolour: red\n", "line 6: colour: unknown field"),
        ("name: x\nprotocols:\n  - name: d\n", "missing required field 'dataset'"),
        (
            "name: x\ndataset:\n  source: s\nprotocols:\n  - name: d\n    char_limit: 0\n",
            "line 5: protocols[0]: char_limit",
        ),
        ("name: [\n", "not valid YAML/JSON"),
    ],
)
def test_bad_definitions_get_line_numbered_errors(text, expected):
    with pytest.raises(SpecError) as error:
        parse(text)
    assert any(expected in e for e in error.value.errors), error.value.errors


def test_counterbalancing_is_balanced_and_reproducible():
    protocols = parse(GOOD)["protocols"][:1]
    questions = [(i, 2, i % 2) for i in range(40)]
    plan = counterbalanced_plan(questions, protocols, seed=3)
    assert plan == counterbalanced_plan(questions, protocols, seed=3)
    honest = Counter(c.honest_seats[0] for c in plan)
    correct_first = Counter(c.answer_order[0] == correct for c, (_, _, correct) in zip(plan, questions))
    first_speaker = Counter(c.speaking_order[0] for c in plan)
    assert honest["A"] == honest["B"] == 20
    assert correct_first[True] == correct_first[False] == 20
    assert first_speaker["A"] == first_speaker["B"] == 20


@pytest.fixture
def unit_questions(db):
    return [
        Question.objects.create(
            text=f"Q{i}",
            answers=["yes", "no"],
            correct_index=i % 2,
            source="unit",
            external_id=str(i),
            hidden_material="passage",
        )
        for i in range(4)
    ]


def test_starting_an_experiment_freezes_it_and_records_provenance(make_user, unit_questions):
    owner = make_user("res", "researcher")
    make_user("judge1", "judge"), make_user("judge2", "judge")
    version, created = load_experiment(GOOD, owner, "good.yaml")
    assert created and version.number == 1
    debates = start_experiment(version.pk)
    assert len(debates) == 8
    version.refresh_from_db()
    assert version.frozen_at is not None and version.code_version
    debate = Debate.objects.filter(experiment_version=version).first()
    assert debate.provenance["experiment_version"] == 1
    assert debate.provenance["counterbalance_seed"] == 11
    assert all(p.agent["backend"] == "scripted" for p in debate.participants.all() if p.is_debater)
    with pytest.raises(Refused):
        start_experiment(version.pk)


def test_editing_a_started_experiment_makes_a_new_version(make_user, unit_questions):
    owner = make_user("res", "researcher")
    make_user("judge1", "judge"), make_user("judge2", "judge")
    version, _ = load_experiment(GOOD, owner)
    start_experiment(version.pk)
    same, created = load_experiment(GOOD, owner)
    assert same.pk == version.pk and not created
    edited, created = load_experiment(GOOD.replace("seed: 11", "seed: 12"), owner)
    assert created and edited.number == 2
    version.refresh_from_db()
    assert version.definition["counterbalance"]["seed"] == 11


def test_a_judge_never_judges_a_question_twice(make_user, unit_questions):
    owner = make_user("res", "researcher")
    make_user("judge1", "judge"), make_user("judge2", "judge")
    version, _ = load_experiment(GOOD, owner)
    debates = start_experiment(version.pk)
    pairs = Counter((d.question_id, p.user_id) for d in debates for p in d.participants.all() if p.seat == "judge")
    assert pairs and max(pairs.values()) == 1


def test_a_bad_file_stores_nothing(make_user, unit_questions):
    owner = make_user("res", "researcher")
    with pytest.raises(SpecError):
        load_experiment(GOOD.replace("format: consultancy", "format: nope"), owner)
    from debates.models import Experiment

    assert not Experiment.objects.exists()
