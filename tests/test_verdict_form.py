"""The verdict form both judging pages post (judging/verdict_form.py)."""

import pytest

from debates.protocol import Refused
from judging.verdict_form import even_split, posted_probabilities, slider_rows, whole_percents

STATE = {
    "question": {"answers": ["red", "blue", "green"]},
    "seats": [{"name": "Debater A", "answer": 0}, {"name": "Debater B", "answer": 2}],
}


def test_posted_percentages_become_probabilities():
    assert posted_probabilities({"p0": "25", "p1": "75"}, 2) == [0.25, 0.75]


@pytest.mark.parametrize("post", [{"p0": "25"}, {"p0": "25", "p1": "lots"}, {}])
def test_a_missing_or_unreadable_percentage_is_refused(post):
    with pytest.raises(Refused) as refused:
        posted_probabilities(post, 2)
    assert refused.value.code == "bad_probabilities"


@pytest.mark.parametrize("answers", [1, 2, 3, 4, 7])
def test_an_even_split_adds_up_to_100(answers):
    split = even_split(answers)
    assert sum(split) == 100 and max(split) - min(split) <= 1


def test_whole_percents_add_up_to_100_with_the_largest_remainders_rounded_up():
    assert whole_percents([1 / 3, 1 / 3, 1 / 3]) == [34, 33, 33]
    assert whole_percents([0.126, 0.874]) == [13, 87]


def test_sliders_start_from_what_was_posted_within_0_to_100_else_from_the_start_values():
    rows = slider_rows(STATE, [30, 30, 40], {"p0": "250", "p1": "nan", "p2": "x"})
    assert [r["value"] for r in rows] == [100, 30, 40]
    assert [r["argued_by"] for r in rows] == [["Debater A"], [], ["Debater B"]]
    assert [r["value"] for r in slider_rows(STATE, [30, 30, 40])] == [30, 30, 40]
