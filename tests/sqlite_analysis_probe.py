"""Run by tests/test_analysis_sqlite.py in a subprocess whose DATABASE_URL points at a fresh SQLite
file (the embedded default's database): builds the seeded test experiment and prints every figure's
rows as JSON on the last line."""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from judging import analysis  # noqa: E402
from tests.verdict_data import build_experiment, user  # noqa: E402

call_command("migrate", verbosity=0)
experiment = build_experiment(user("rita", "researcher"), seed=int(sys.argv[1]))
result = analysis.compute(analysis.experiment_verdicts(experiment))
print(json.dumps({"summary": result["summary"], "figures": {f.key: f.rows for f in result["figures"]}}))
