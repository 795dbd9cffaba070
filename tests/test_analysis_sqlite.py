"""The analysis on SQLite, the embedded default's database (the rest of the suite runs on
PostgreSQL): every figure is computed, with the same numbers as on PostgreSQL for the same data."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from judging import analysis

from .verdict_data import build_experiment, user

PROBE = Path(__file__).resolve().parent / "sqlite_analysis_probe.py"
SEED = 7
# Bootstrap intervals depend on the order in which each database hands over the rows; the rest must agree.
ORDER_DEPENDENT = ("bootstrap_low", "bootstrap_high", "elo", "elo_low", "elo_high")


def _comparable(rows):
    """Rows without their order-dependent columns, in a fixed order."""
    kept = [{k: v for k, v in row.items() if k not in ORDER_DEPENDENT} for row in rows]
    return sorted(kept, key=lambda row: json.dumps(row, sort_keys=True))


@pytest.mark.django_db
@pytest.mark.subprocess
def test_every_figure_is_computed_on_sqlite_with_the_numbers_of_postgresql(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'embedded.sqlite3'}",
        "PYTHONUNBUFFERED": "1",
    }
    done = subprocess.run([sys.executable, str(PROBE), str(SEED)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    on_sqlite = json.loads(done.stdout.strip().splitlines()[-1])

    experiment = build_experiment(user("rita", "researcher"), seed=SEED)
    here = analysis.compute(analysis.experiment_verdicts(experiment))
    assert on_sqlite["summary"] == here["summary"]
    assert set(on_sqlite["figures"]) == {f.key for f in here["figures"]}
    for figure in here["figures"]:
        rows = on_sqlite["figures"][figure.key]
        assert len(rows) == len(figure.rows), figure.key
        if figure.key != "bradley-terry":  # its ranks follow the order-dependent ratings
            assert _comparable(rows) == _comparable(json.loads(json.dumps(figure.rows))), figure.key
