"""The one verdict path (judging.verdicts): one tie rule for every verdict that reaches the record,
the source's rule kept for imports, and the completion and event of the debate recorded once."""

import pytest

from debates.models import Debate
from judging import verdicts
from judging.models import Verdict


@pytest.fixture
def finished(two_round_debate):
    Debate.objects.filter(pk=two_round_debate.pk).update(status=Debate.AWAITING_VERDICT)
    return Debate.objects.select_related("question").get(pk=two_round_debate.pk)


def test_a_tie_never_counts_for_the_truth(finished):
    correct = finished.question.correct_index
    tied = [0.5, 0.5]
    verdict, events = verdicts.record_verdict(
        finished, tied, judge_kind=Verdict.AI, ai_judge="some-model", live=False, reason="Cannot tell."
    )
    assert verdict.chosen_index != correct and not verdict.correct
    assert verdict.provenance == {"tie_rule": verdicts.TIE_RULE, "tie": True}
    # an AI verdict while a person is seated to judge: the debate still waits for them
    finished.refresh_from_db()
    assert finished.status == Debate.AWAITING_VERDICT and events == []
    assert verdicts.chosen_answer([0.2, 0.4, 0.4], 1) == (2, True)
    assert verdicts.chosen_answer([0.2, 0.4, 0.4], 0) == (1, True)
    assert verdicts.chosen_answer([0.7, 0.3], 0) == (0, False)


def test_a_live_verdict_completes_the_debate_with_one_numbered_event(finished):
    judge = finished.participants.get(seat="judge").user
    before = finished.last_seq
    verdict, events = verdicts.record_verdict(
        finished, [0.8, 0.2], judge=judge, reason="The quotes.", seconds_spent=12.0, after_seq=before
    )
    finished.refresh_from_db()
    assert finished.status == Debate.COMPLETE and [(e.seq, e.kind) for e in events] == [(before + 1, "verdict_given")]
    assert verdict.provenance == {"tie_rule": verdicts.TIE_RULE} and verdict.after_seq == before


def test_imports_keep_the_sources_judgment_and_name_its_rule(finished):
    rule = verdicts.source_rule("some-dataset: ties go to the first answer", 0, True, -1.0)
    verdict = verdicts.build_verdict(finished, [0.5, 0.5], reason="imported", source_rule=rule, after_seq=0)
    assert (verdict.chosen_index, verdict.correct, verdict.score) == (0, True, -1.0)
    assert verdict.provenance == {"tie_rule": "some-dataset: ties go to the first answer"}
    assert verdict.pk is None  # built, not saved: bulk importers save many at once


def test_further_verdict_fields_pass_through_as_keywords(finished):
    with pytest.raises(TypeError, match="unexpected keyword"):  # not a Verdict field
        verdicts.build_verdict(finished, [0.8, 0.2], reason="x", no_such_field=True)
    verdict = verdicts.build_verdict(finished, [0.8, 0.2], reason="x", client_id="c-1", after_seq=3)
    assert (verdict.client_id, verdict.after_seq) == ("c-1", 3)
