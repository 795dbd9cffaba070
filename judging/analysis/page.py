"""Every figure of an analysis page computed at once, the figures with their own queries on a second
connection where PostgreSQL allows it."""

import concurrent.futures

import numpy as np
from django.db import connection

from .figures import (
    N_BOOT,
    accuracy_figures,
    agreement_figure,
    by_round_figure,
    calibration_figure,
    comparison_figure,
    debater_figures,
    judge_figure,
    lie_figure,
)
from .queries import data_stamp, facts, short_queries


def compute(verdicts, n_boot: int = N_BOOT) -> dict:
    """Every figure, computed now.

    On PostgreSQL, outside a transaction, the figures with their own queries (round by round,
    debaters, lies) are computed on a second connection while this one fetches the facts and
    computes the rest: the two halves cost about the same, so the page takes about half the time
    where two cores are free. Inside a transaction (whose rows another connection cannot see)
    everything runs here, one after the other. The two connections may see a verdict that arrives
    meanwhile differently; the next refresh, which that verdict triggers, settles it."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        with short_queries():
            return _compute(verdicts, n_boot, lambda: _side_figures(verdicts))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        side = pool.submit(_on_own_connection, _side_figures, verdicts)
        with short_queries():
            return _compute(verdicts, n_boot, side.result)


def _side_figures(verdicts) -> dict:
    """The figures that run their own queries rather than read the facts."""
    return {"by_round": by_round_figure(verdicts), "debaters": debater_figures(verdicts), "lies": lie_figure(verdicts)}


def _on_own_connection(function, *args):
    try:
        with short_queries():
            return function(*args)
    finally:
        connection.close()  # this thread's own connection


def _compute(verdicts, n_boot: int, side_figures) -> dict:
    """side_figures: a function that returns _side_figures' result (computing it, or waiting for it)."""
    data = facts(verdicts)
    if data:
        stamp = f"{data['id'].size}-{int(data['id'].max())}"
        summary = {
            "verdicts": int(data["id"].size),
            "debates": int(np.unique(data["debate_id"]).size),
            "questions": int(np.unique(data["question_id"]).size),
            "correct": int(data["correct"].sum()),
        }
    else:
        stamp, summary = data_stamp(verdicts), {"verdicts": 0, "debates": 0, "questions": 0, "correct": 0}
    accuracy = accuracy_figures(data, n_boot) + [comparison_figure(data, n_boot), calibration_figure(data)]
    judges = [judge_figure(data), agreement_figure(data)]
    side = side_figures()
    figures = accuracy + [side["by_round"]] + side["debaters"] + judges + ([side["lies"]] if side["lies"] else [])
    return {"stamp": stamp, "summary": summary, "figures": figures, "stale": False}
