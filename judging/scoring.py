"""Proper scoring rules for a judge's probabilities, and the per-turn penalty. Pure module.

Higher is better for every rule. `log` is log2 p(correct) as in the NYU platform (0 is perfect).
"""

import math

RULES = ("log", "quadratic", "spherical")


def score(rule: str, probabilities, correct_index: int, turns: int = 0, turn_penalty: float = 0.0) -> float:
    p = [float(x) for x in probabilities]
    q = p[correct_index]
    if rule == "log":
        value = math.log2(max(q, 1e-12))
    elif rule == "quadratic":
        value = 2 * q - sum(x * x for x in p)  # 1 - Brier score (multi-class), shifted
    elif rule == "spherical":
        value = q / math.sqrt(sum(x * x for x in p))
    else:
        raise ValueError(f"unknown scoring rule {rule!r}; use one of {', '.join(RULES)}")
    return value - turn_penalty * turns
