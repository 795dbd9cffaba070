"""The verdict form that live judging (the verdict page) and offline judging (step reports and the
final verdict) both post: reading its probabilities, and the slider rows it starts from, which
templates/judging/_sliders.html draws."""

from debates import services
from debates.protocol import Refused


def posted_probabilities(post, answers: int) -> list[float]:
    """The form's percentages p0, p1, ... (shown order) as probabilities; refused when one is
    missing or not a number (the service checks the rest: range, sum, a lean)."""
    try:
        return [float(post.get(f"p{i}", "")) / 100 for i in range(answers)]
    except ValueError:
        raise Refused("bad_probabilities", "give a percentage for every answer") from None


def even_split(answers: int) -> list[int]:
    """Whole percentages adding up to 100, as even as they can be (the first ones get the rest)."""
    return [100 // answers + (1 if i < 100 % answers else 0) for i in range(answers)]


def whole_percents(probabilities) -> list[int]:
    """Probabilities as whole percentages adding up to 100 (largest remainders win)."""
    shares = [p * 100 for p in probabilities]
    percents = [int(s) for s in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(shares[i] - percents[i]), i))
    for i in by_remainder[: 100 - sum(percents)]:
        percents[i] += 1
    return percents


def slider_rows(state, start: list[int], posted=None) -> list[dict]:
    """One row per answer in shown order, with who argued for it. Each slider starts from what was
    just posted when that reads as a number (kept within 0-100), else from `start`."""
    rows = []
    for i, answer in enumerate(state["question"]["answers"]):
        value = start[i]
        if posted is not None:
            try:
                value = max(0, min(100, round(float(posted.get(f"p{i}", value)))))
            except (ValueError, OverflowError):  # not a number, NaN, or infinite
                pass
        rows.append({"index": i, "answer": answer, "value": value, "argued_by": argued_by(state, i)})
    return rows


def recorded_rows(debate, state, verdict) -> list[dict]:
    """A stored verdict in the order the judge saw the answers (no correctness, no score)."""
    shown = services.to_display(debate, verdict.probabilities)
    chosen_shown = debate.shown_answer_order().index(verdict.chosen_index)
    return [
        {"answer": answer, "percent": round(p * 100, 1), "chosen": i == chosen_shown, "argued_by": argued_by(state, i)}
        for i, (answer, p) in enumerate(zip(state["question"]["answers"], shown))
    ]


def argued_by(state, shown_index: int) -> list[str]:
    """The names of the seats that argued for the answer shown at this position."""
    return [seat["name"] for seat in state["seats"] if seat.get("answer") == shown_index]
