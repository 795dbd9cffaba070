"""An experiment's verdicts turned into the numbers and figures of its analysis page.

The database does the joining and counting; judging.stats does the statistics. The modules:
- queries: which verdicts (experiment_verdicts, nyu_verdicts) and the queries that fetch them, one
  row per verdict straight into numpy arrays (facts) or grouped counts expanded back into arrays;
- figures: Figure (an SVG chart, its rows, their CSV) and one function per figure;
- page: every figure of a page at once (compute), on two connections where PostgreSQL allows;
- caching: the page cached until a verdict is added or removed (analyse).
The names below are what the pages, the API, the bench and the tests use.
"""

from .caching import analyse
from .figures import (
    N_BOOT,
    NYU_PAPER,
    Figure,
    accuracy_figures,
    agreement_figure,
    by_round_figure,
    calibration_figure,
    comparison_figure,
    debater_figures,
    judge_figure,
    lie_figure,
    nyu_reproduction,
)
from .page import compute
from .queries import NYU_SOURCE, data_stamp, experiment_verdicts, facts, nyu_verdicts, short_queries

__all__ = [
    "N_BOOT",
    "NYU_PAPER",
    "NYU_SOURCE",
    "Figure",
    "accuracy_figures",
    "agreement_figure",
    "analyse",
    "by_round_figure",
    "calibration_figure",
    "comparison_figure",
    "compute",
    "data_stamp",
    "debater_figures",
    "experiment_verdicts",
    "facts",
    "judge_figure",
    "lie_figure",
    "nyu_reproduction",
    "nyu_verdicts",
    "short_queries",
]
