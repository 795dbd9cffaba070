"""The analysis page and its numbers. Every number is checked against judging.stats applied to the
same verdicts read one by one from the models (the slow, obvious way), so the SQL grouping, the
expansion of counts and the wiring into the statistics are what is under test."""

import csv
import io
import os
from pathlib import Path

import numpy as np
import pytest
from django.core.cache import cache
from django.urls import reverse

from debates.models import Participant, Turn
from judging import analysis, scoring, stats
from judging.models import Verdict

from .factories import another_ai_verdict
from .verdict_data import build_experiment, experiment_fixtures, user

NYU_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "nyu-debate-2023"


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch):
    """An empty cache per test, and figures brought up to date inline rather than in a thread (a
    thread has its own database connection, which cannot see a test's uncommitted rows)."""
    cache.clear()

    def refresh_now(verdicts, n_boot, key):
        cache.set(key, analysis.compute(verdicts, n_boot), 60)
        cache.delete(f"{key}:refreshing")

    monkeypatch.setattr(analysis.caching, "_refresh_in_background", refresh_now)
    yield
    cache.clear()


# One experiment for the whole module; tests that add to it run inside their own rolled-back transaction.
shared, owner, experiment = experiment_fixtures(seed=int(os.environ.get("ANALYSIS_SEED", "3")))


def _figures(experiment):
    return {f.key: f for f in analysis.analyse(analysis.experiment_verdicts(experiment))["figures"]}


def _verdicts(experiment):
    return list(
        Verdict.objects.filter(debate__experiment_version__experiment=experiment)
        .select_related("debate__question", "judge")
        .order_by("id")
    )


def _p_correct(verdict):
    return verdict.probabilities[verdict.debate.question.correct_index]


def _debater_name(participant):
    return participant.user.username if participant.user else participant.agent["model"]


def test_accuracy_figures_match_stats_on_the_same_verdicts(experiment):
    figures = _figures(experiment)
    verdicts = _verdicts(experiment)
    for key, group_of in (
        ("accuracy-protocol", lambda v: v.debate.protocol_name),
        ("accuracy-judge-kind", lambda v: v.judge_kind),
        ("accuracy-debater-kind", lambda v: "human"),
    ):
        expected = stats.grouped_accuracy(
            [group_of(v) for v in verdicts],
            [v.correct for v in verdicts],
            [v.debate.question_id for v in verdicts],
            n_boot=analysis.N_BOOT,
        )
        rows = {r["group"]: r for r in figures[key].rows}
        assert set(rows) == set(expected)
        for group, proportion in expected.items():
            row = rows[group]
            assert row["judgments"] == proportion.total
            assert row["accuracy"] == pytest.approx(proportion.estimate, abs=1e-4)
            assert row["wilson_low"] == pytest.approx(proportion.wilson.low, abs=1e-4)
            # The bootstrap depends on the order questions are first seen, which may differ; it must
            # still bracket the estimate and lie in [0, 1].
            assert 0 <= row["bootstrap_low"] <= row["accuracy"] <= row["bootstrap_high"] <= 1
        assert "<svg" in figures[key].svg and "</svg>" in figures[key].svg


def test_protocol_difference_matches_stats(experiment):
    row = _figures(experiment)["protocol-differences"].rows[0]
    verdicts = _verdicts(experiment)
    a = [v.correct for v in verdicts if v.debate.protocol_name == "debate"]
    b = [v.correct for v in verdicts if v.debate.protocol_name == "consultancy"]
    expected = stats.compare_accuracies(a, b)
    assert row["comparison"] == "debate − consultancy"
    assert row["difference"] == pytest.approx(expected.estimate, abs=1e-4)
    assert row["newcombe_low"] == pytest.approx(expected.newcombe.low, abs=1e-4)
    assert row["p_value"] == pytest.approx(expected.p_value, rel=1e-4)
    assert row["test"] == expected.test


def test_calibration_matches_stats(experiment):
    figure = _figures(experiment)["calibration"]
    verdicts = _verdicts(experiment)
    expected = stats.calibration([_p_correct(v) for v in verdicts])
    overall = figure.rows[0]
    assert overall["group"] == "all" and overall["judgments"] == len(verdicts)
    assert overall["brier"] == pytest.approx(expected.brier, abs=1e-4)
    assert overall["log_score"] == pytest.approx(expected.log_score, abs=1e-4)
    assert overall["ece"] == pytest.approx(expected.expected_calibration_error, abs=1e-4)
    assert [b["count"] for b in figure.bins] == [b.count for b in expected.bins]
    human = next(r for r in figure.rows if r["group"] == "human")
    assert human["brier"] == pytest.approx(
        stats.brier_score([_p_correct(v) for v in verdicts if v.judge_kind == "human"]), abs=1e-4
    )


def test_round_by_round_means_follow_the_judges_reports(experiment):
    figure = _figures(experiment)["by-round"]
    for protocol in ("debate", "consultancy"):
        sequences = []
        for debate_id in sorted({v.debate_id for v in _verdicts(experiment) if v.debate.protocol_name == protocol}):
            reports = Turn.objects.filter(debate_id=debate_id, seat="judge", kind="feedback").order_by("id")
            sequences.append([t.probabilities[t.debate.question.correct_index] for t in reports])
        expected = stats.probability_by_round(sequences)
        rows = [r for r in figure.rows if r["protocol"] == protocol]
        assert [r["debates"] for r in rows] == [m.count for m in expected]
        assert [r["mean_p_correct"] for r in rows] == pytest.approx([m.mean for m in expected], abs=1e-4)


def test_debaters_and_judges_match_stats(experiment):
    figures = _figures(experiment)
    verdicts = _verdicts(experiment)
    names, honest, won, winners, losers = [], [], [], [], []
    for v in verdicts:
        seats = list(Participant.objects.filter(debate=v.debate, answer_index__isnull=False).select_related("user"))
        for seat in seats:
            names.append(_debater_name(seat))
            honest.append(seat.answer_index == v.debate.question.correct_index)
            won.append(seat.answer_index == v.chosen_index)
        if len(seats) == 2:
            winner = next(s for s in seats if s.answer_index == v.chosen_index)
            loser = next(s for s in seats if s is not winner)
            winners.append(_debater_name(winner))
            losers.append(_debater_name(loser))
    expected = {
        (r.debater, role): p
        for r in stats.win_rates(names, honest, won)
        for role, p in (("honest", r.honest), ("dishonest", r.dishonest))
        if p
    }
    got = {(r["debater"], r["role"]): r for r in figures["debater-win-rates"].rows}
    assert set(got) == set(expected)
    for key, p in expected.items():
        assert (got[key]["wins"], got[key]["verdicts"]) == (p.successes, p.total)

    fit = stats.bradley_terry(winners, losers, n_boot=0)
    ratings = {r["debater"]: r["elo"] for r in figures["bradley-terry"].rows}
    for player in fit.players:
        assert ratings[player] == pytest.approx(float(fit.elo(fit.rating_of(player))), abs=0.1)
    ranked = [r["debater"] for r in figures["bradley-terry"].rows]
    assert ranked == [row["player"] for row in fit.rows()]

    board = stats.judge_leaderboard(
        [v.judge.username if v.judge else v.ai_judge for v in verdicts],
        [v.correct for v in verdicts],
        [v.score for v in verdicts],
    )
    rows = figures["judges"].rows
    assert {r["judge"]: r["mean_score"] for r in rows} == pytest.approx(
        {b.judge: b.mean_score for b in board}, abs=1e-4
    )
    assert {r["judge"]: r["judgments"] for r in rows} == {b.judge: b.judgments for b in board}
    assert [r["mean_score"] for r in rows] == sorted((r["mean_score"] for r in rows), reverse=True)


def test_agreement_between_human_and_ai_judges(experiment):
    figure = _figures(experiment)["agreement"]
    by_debate = {}
    for v in _verdicts(experiment):
        by_debate.setdefault(v.debate_id, {"human": [], "ai": []})[v.judge_kind].append(v.chosen_index)
    items = [d["human"] + d["ai"] for d in by_debate.values() if d["human"] and d["ai"]]
    row = next(r for r in figure.rows if r["pairing"] == "human-AI")
    assert row["debates"] == len(items)
    assert row["krippendorff_alpha"] == pytest.approx(stats.krippendorff_alpha(items), abs=1e-4)
    assert row["fleiss_kappa"] == pytest.approx(stats.fleiss_kappa(items), abs=1e-4)


def test_pixel_lies_confusion(owner):
    from debates import services
    from debates.models import Question
    from debates.protocol import Protocol

    experiment = build_experiment(owner, seed=1, questions=1, judges=1, ai_verdicts=False, name="Pixels")
    version = experiment.versions.get()
    rng = np.random.default_rng(5)
    judge = user("pixel-judge", "judge")
    records = []
    for _ in range(12):
        true, lie = int(rng.integers(0, 10)), int(rng.integers(0, 10))
        if true == lie:
            continue
        question = Question.objects.create(
            kind="image",
            text="Which digit?",
            answers=[str(d) for d in range(10)],
            correct_index=true,
            hidden_image=[[0] * 28] * 28,
        )
        debate = services.create_debate(
            question,
            Protocol(rounds=("sequential",)),
            {"A": (None, true), "B": (None, lie)},
            answer_order=list(range(10)),
        )
        debate.experiment_version = version
        debate.save(update_fields=["experiment_version"])
        Participant.objects.filter(debate=debate, answer_index__isnull=False).update(agent={"model": "mcts"})
        liar_won = bool(rng.random() < 0.4)
        chosen = lie if liar_won else true
        probabilities = [0.0] * 10
        probabilities[chosen] = 1.0
        Verdict.objects.create(
            debate=debate,
            judge_kind="ai",
            ai_judge="sparse-cnn",
            live=True,
            probabilities=probabilities,
            chosen_index=chosen,
            correct=not liar_won,
            reason="net",
            after_turn=0,
            after_seq=0,
            score=scoring.score("log", probabilities, true),
        )
        records.append({"true_label": true, "lie_label": lie, "liar_won": liar_won})
    assert judge
    figure = _figures(experiment)["lie-confusion"]
    expected = stats.lie_confusion(records)
    for row in figure.rows:
        assert row["lies"] == expected.argued[row["true_label"], row["lie_label"]]
        assert row["lies_won"] == expected.won[row["true_label"], row["lie_label"]]
    assert sum(r["lies"] for r in figure.rows) == len(records)


# ---------------------------------------------------------------------------------------------
# Pages


def test_analysis_page_permissions(client, experiment, owner):
    url = reverse("experiment_analysis", args=[experiment.pk])
    response = client.get(url)
    assert response.status_code == 302 and reverse("login") in response["Location"]
    client.force_login(user("judith", "judge"))
    assert client.get(url).status_code == 403
    assert client.get(reverse("experiment_export", args=[experiment.pk, "jsonl"])).status_code == 403
    client.force_login(user("other-researcher", "researcher"))
    assert client.get(url).status_code == 403
    assert client.get(reverse("experiment_detail", args=[experiment.pk])).status_code == 403
    assert experiment.name not in client.get(reverse("experiment_list")).content.decode()
    client.force_login(owner)
    page = client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert body.count("<svg") >= 8 and "Bradley-Terry" in body and "cdn" not in body.lower()


def test_superuser_sees_every_experiment(client, experiment):
    from django.contrib.auth.models import User

    admin = User.objects.create_superuser("root", password="pass-for-tests-1")
    client.force_login(admin)
    assert experiment.name in client.get(reverse("experiment_list")).content.decode()
    assert client.get(reverse("experiment_analysis", args=[experiment.pk])).status_code == 200


def test_figure_csv_is_the_data_behind_the_chart(client, experiment, owner):
    client.force_login(owner)
    figure = _figures(experiment)["accuracy-protocol"]
    response = client.get(reverse("experiment_figure_csv", args=[experiment.pk, "accuracy-protocol"]))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["group"] for r in rows] == [r["group"] for r in figure.rows]
    assert [float(r["accuracy"]) for r in rows] == [r["accuracy"] for r in figure.rows]
    assert client.get(reverse("experiment_figure_csv", args=[experiment.pk, "nope"])).status_code == 404


def test_page_updates_when_a_verdict_arrives(client, experiment, owner):
    client.force_login(owner)
    stamp_url = reverse("experiment_analysis_stamp", args=[experiment.pk])
    before = client.get(stamp_url).json()["stamp"]
    first = client.get(reverse("experiment_analysis", args=[experiment.pk]) + "?partial=1").content.decode()
    assert f'data-stamp="{before}"' in first and "<html" not in first
    verdict = Verdict.objects.filter(debate__experiment_version__experiment=experiment, judge_kind="ai").first()
    another_ai_verdict(verdict, "model-z")
    after = client.get(stamp_url).json()["stamp"]
    assert after != before
    # The figures computed before are served at once, marked stale, while new ones are computed.
    stale = client.get(reverse("experiment_analysis", args=[experiment.pk]) + "?partial=1").content.decode()
    assert 'data-stamp="stale"' in stale and "being brought up to date" in stale and "model-z" not in stale
    fresh = client.get(reverse("experiment_analysis", args=[experiment.pk]) + "?partial=1").content.decode()
    assert f'data-stamp="{after}"' in fresh and "model-z" in fresh


def test_experiment_list_and_detail(client, experiment, owner):
    client.force_login(owner)
    listing = client.get(reverse("experiment_list")).content.decode()
    assert experiment.name in listing
    detail = client.get(reverse("experiment_detail", args=[experiment.pk])).content.decode()
    total = Verdict.objects.filter(debate__experiment_version__experiment=experiment).count()
    assert f"{total} verdicts in" in detail
    assert f'<progress max="40" value="{total}">' in detail
    assert reverse("experiment_export", args=[experiment.pk, "jsonl"]) in detail


def test_empty_experiment_renders(client, owner):
    from debates.models import Experiment

    empty = Experiment.objects.create(name="Nothing yet", owner=owner)
    client.force_login(owner)
    page = client.get(reverse("experiment_analysis", args=[empty.pk]))
    assert page.status_code == 200 and "no data yet" in page.content.decode()


# ---------------------------------------------------------------------------------------------
# NYU reproduction


@pytest.mark.slow
@pytest.mark.skipif(not NYU_DATA.exists(), reason="the NYU dataset is not in ../shared/datasets")
def test_nyu_reproduction_matches_the_paper(client, owner):
    import json

    from judging.nyu_import import import_nyu

    import_nyu(NYU_DATA / "pub")
    figure = analysis.nyu_reproduction()
    rows = {r["group"]: r for r in figure.rows}
    # The same numbers computed straight from the dataset's metadata file.
    expected = {}
    for line in (NYU_DATA / "pub" / "debates-metadata.jsonl").read_text().splitlines():
        room = json.loads(line)
        if not room.get("includedInPaper"):
            continue
        info = room["status"]["Complete"]["result"]["judgingInfo"]
        key = (
            f"{'human' if room['setting']['isHuman'] else 'AI'} "
            f"{'debate' if room['setting']['isDebate'] else 'consultancy'}"
        )
        expected.setdefault(key, []).append(info["finalJudgement"][info["correctAnswerIndex"]] > 0.5)
    for (debaters, fmt), (paper_accuracy, paper_count) in analysis.NYU_PAPER.items():
        row = rows[f"{debaters} {fmt}"]
        assert row["judgments"] == len(expected[f"{debaters} {fmt}"]) == paper_count
        assert row["accuracy"] == pytest.approx(np.mean(expected[f"{debaters} {fmt}"]), abs=1e-4)
        assert round(row["accuracy"], 2) == paper_accuracy
        assert row["wilson_low"] < paper_accuracy < row["wilson_high"]
    client.force_login(owner)
    page = client.get(reverse("nyu_analysis"))
    assert page.status_code == 200 and "human debate" in page.content.decode()
