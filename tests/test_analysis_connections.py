"""On PostgreSQL, outside a transaction, the analysis computes part of its figures on a second
database connection. The figures must be exactly those of the one-connection path."""

import threading

import pytest
from django.db import connection, transaction

from judging import analysis

from .verdict_data import build_experiment, user


def _figures(result):
    return [(f.key, f.rows, f.note, f.svg) for f in result["figures"]]


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_two_connections_give_the_figures_of_one(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the second connection is used on PostgreSQL only")
    experiment = build_experiment(user("rita", "researcher"), seed=11)
    verdicts = analysis.experiment_verdicts(experiment)
    threads = []
    on_own_connection = analysis.page._on_own_connection

    def spy(function, *args):
        threads.append(threading.get_ident())
        return on_own_connection(function, *args)

    monkeypatch.setattr(analysis.page, "_on_own_connection", spy)
    assert not connection.in_atomic_block
    split = analysis.compute(verdicts)
    with transaction.atomic():
        together = analysis.compute(verdicts)
    assert len(threads) == 1 and threads[0] != threading.get_ident()  # only the first one used a second thread
    assert split["summary"] == together["summary"] and split["stamp"] == together["stamp"]
    assert _figures(split) == _figures(together)
    assert [f.key for f in split["figures"]][:7] == [
        "accuracy-protocol",
        "accuracy-judge-kind",
        "accuracy-debater-kind",
        "protocol-differences",
        "calibration",
        "by-round",
        "debater-win-rates",
    ]
    assert all(f.rows for f in split["figures"] if f.key in ("by-round", "debater-win-rates", "bradley-terry"))
