"""Experiment files from an attacker (issue 10): YAML aliases that expand exponentially (a 307-byte
file held a request for 11.7 s), self-referencing aliases, Python and set tags, nesting thousands
deep, NUL, huge numbers, over-long names. Each is refused with a line-numbered error, quickly,
and nothing is stored."""

import time

import pytest

from debates import experiment_spec
from debates.models import Experiment

VALID = """name: Fine
dataset:
  source: demo
protocols:
  - name: debate
"""


def billion_laughs(levels: int) -> str:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\nname: bomb\n"


@pytest.mark.parametrize(
    "text, expected",
    [
        (billion_laughs(9), "line 2: YAML aliases (*name) are not allowed in experiment files; write the value out"),
        ("name: &n x\ndescription: *n\n" + VALID[len("name: Fine\n") :], "line 2: YAML aliases"),
        ("&a x: *a\n", "line 1: YAML aliases"),
        ("name: Fine\ndataset: &d {source: *d}\n", "line 2: YAML aliases"),
        ("name: !!python/name:os.system x\n", "line 1: the tag tag:yaml.org,2002:python/name:os.system is not allowed"),
        (
            "name: !!python/object/apply:os.system [ls]\n",
            "line 1: the tag tag:yaml.org,2002:python/object/apply:os.system",
        ),
        ("name: x\ndescription: !!set {a, b}\n", "line 2: the tag tag:yaml.org,2002:set is not allowed"),
        ("name: x\ndescription: !!binary aGk=\n", "line 2: the tag tag:yaml.org,2002:binary is not allowed"),
        (
            "name: x\ndescription: 2024-01-01\n",
            "line 2: the tag tag:yaml.org,2002:timestamp is not allowed in experiment files (put dates in quotes)",
        ),
        ("name: x\ndescription: " + "[" * 3000 + "\n", "line 2: nested more than 20 levels deep"),
        ("name: x\ndescription: " + "{a: " * 3000 + "\n", "line 2: nested more than 20 levels deep"),
        ('name: "a\\0b"\n', "line 1: text may not contain NUL characters or broken Unicode surrogates"),
        ('name: "a\\ud800b"\n', "line 1: text may not contain NUL characters"),
        ("name: x\ntarget_verdicts: " + "9" * 5000 + "\n", "line 2: whole numbers have at most 18 digits"),
        ("name: x\ntarget_verdicts: 1.0e+400\n", "line 2: numbers must be finite"),
        (VALID.replace("name: Fine", "name: " + "n" * 201), "line 1: name: may have at most 200 characters"),
        (VALID.replace("- name: debate", "- name: " + "p" * 101), "line 5: protocols[0].name: may have at most 100"),
        ("name: x\n" + "description: " + "d" * 1_000_001, "line 1: the definition is larger than 1000 kB"),
        ("name: [unclosed\n", "not valid YAML/JSON"),
    ],
)
def test_a_hostile_experiment_file_is_refused_quickly_with_its_line(text, expected):
    started = time.perf_counter()
    with pytest.raises(experiment_spec.SpecError) as error:
        experiment_spec.parse(text)
    assert time.perf_counter() - started < 2  # refused before any expansion
    assert any(expected in problem for problem in error.value.errors), error.value.errors
    assert all(problem.startswith("line ") for problem in error.value.errors)


@pytest.mark.parametrize(
    "text",
    [
        billion_laughs(9),
        'name: "a\\0b"\ndataset: {source: d}\nprotocols: [{name: p}]\n',
        "name: " + "n" * 300 + "\ndataset: {source: d}\nprotocols: [{name: p}]\n",
        "name: x\ndescription: " + "[" * 3000,
    ],
)
def test_the_web_form_refuses_them_and_stores_nothing(client, make_user, text):
    rita = make_user("rita", "researcher")
    client.force_login(rita)
    started = time.perf_counter()
    response = client.post("/experiments/new/", {"definition": text})
    assert time.perf_counter() - started < 5
    assert response.status_code == 400 and b"line " in response.content
    assert Experiment.objects.count() == 0
