"""Confidence intervals for a proportion: the one Wilson interval that judging.stats (accuracy, win
rates) and debates.pixel.selfplay (Table 2) both use. Pure module (standard library only); it lives
under debates/ because debates.pixel needs it and debates never imports judging."""

import math
from statistics import NormalDist


def z_for(level: float) -> float:
    """The two-sided normal quantile for a confidence level (1.959964... for 0.95)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level!r}")
    return NormalDist().inv_cdf(0.5 + level / 2)


def wilson_interval(successes: float, total: int, level: float = 0.95) -> tuple[float, float]:
    """(low, high) of the Wilson score interval for `successes` out of `total`. Well behaved at 0
    and at `total`: the bound on that side is exactly 0 or 1. Ties counted as halves are fine
    (successes need not be whole). Raises ValueError for no observations or impossible counts."""
    if total <= 0:
        raise ValueError("a proportion needs at least one observation")
    if not 0 <= successes <= total:
        raise ValueError(f"successes must be between 0 and total ({total}), got {successes}")
    z = z_for(level)
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    # At 0 or `total` successes one bound is exactly p; rounding must not push it past p.
    return min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))
