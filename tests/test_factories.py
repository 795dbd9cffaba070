"""The test factories make what the platform itself would: users who can sign in with their role,
debates through services.create_debate, finished debates and verdicts through the write paths."""

import math

import pytest

from debates.models import Debate
from tests.factories import TEST_PASSWORD, DebateFactory, FinishedDebateFactory, UserFactory, VerdictFactory

pytestmark = pytest.mark.django_db


def test_a_user_signs_in_with_the_test_password_and_holds_their_role(client):
    from django.http import HttpRequest

    judge = UserFactory(role="judge")
    assert list(judge.groups.values_list("name", flat=True)) == ["judge"]
    # The login lockout (django-axes) checks every sign-in against the request it came with.
    assert client.login(request=HttpRequest(), username=judge.username, password=TEST_PASSWORD)
    assert not client.login(request=HttpRequest(), username=judge.username, password="wrong")


def test_a_debate_seats_two_debaters_and_a_judge_and_waits_to_start():
    debate = DebateFactory()
    seats = {p.seat: (p.user.groups.get().name, p.answer_index) for p in debate.participants.all()}
    assert seats == {"A": ("debater", 0), "B": ("debater", 1), "judge": ("judge", None)}
    assert debate.status == Debate.SCHEDULED


def test_a_finished_debate_has_every_turn_of_its_protocol_and_awaits_the_verdict():
    debate = FinishedDebateFactory()
    assert debate.status == Debate.AWAITING_VERDICT
    assert list(debate.turns.values_list("seat", flat=True)) == ["A", "B", "judge", "A", "B"]


def test_a_verdict_is_scored_and_completes_its_debate():
    verdict = VerdictFactory(probabilities=[0.25, 0.75])
    debate = Debate.objects.get(pk=verdict.debate_id)
    shown_first = debate.shown_answer_order()[0]
    assert verdict.probabilities[shown_first] == pytest.approx(0.25)
    assert verdict.correct == (verdict.chosen_index == debate.question.correct_index)
    assert verdict.score == pytest.approx(math.log2(verdict.probabilities[debate.question.correct_index]))
    assert debate.status == Debate.COMPLETE
