"""The AI judge of image debates: the sparse pixel judge network on the debate's final mask.

It sees exactly what the human judge sees as evidence, the revealed pixels (never who revealed
them, when, or what anybody said), and its verdict is stored beside any human verdict on the
same debate: Verdict(judge_kind="ai", ai_judge="pixel-judge-6px", live=False) with a probability
per answer (a softmax over the judge's logits for the answers' digits) and provenance naming the
weights by SHA-256.

Verdict rule: the answer with the highest logit; an exact tie goes to a wrong answer (the
platform's one tie rule, judging.verdicts, which is also the game's, debates.pixel.game).
"""

import logging

import numpy as np
from django.db import transaction

from debates import pixel_debates, provenance
from debates.models import Debate
from debates.pixel.game import batch_judge_planes
from debates.protocol import Refused

from . import verdicts
from .models import Verdict

log = logging.getLogger(__name__)
FINISHED = (Debate.AWAITING_VERDICT, Debate.COMPLETE)


def judge_pixels_for(mask_size: int) -> int:
    """Which trained judge reads a mask: the one trained on that many pixels, else the nearest
    (the smaller on a tie), e.g. the 4-pixel judge for the human game's two pixels."""
    return min(pixel_debates.JUDGE_PIXELS, key=lambda p: (abs(p - mask_size), p))


def ai_judge_name(pixels: int) -> str:
    return f"pixel-judge-{pixels}px"


def answer_logits(question, logits) -> np.ndarray:
    """The judge's logits for the question's answers (digit strings), in the question's order."""
    return np.array([float(logits[int(answer)]) for answer in question.answers], dtype=np.float64)


def verdict_probabilities(question, logits) -> list[float]:
    """The probabilities over the answers (a softmax of the judge's logits for their digits); the
    chosen answer follows from them by the platform's rule (judging.verdicts: a tie is wrong)."""
    scores = answer_logits(question, logits)
    weights = np.exp(scores - scores.max())
    return [float(w) for w in weights / weights.sum()]


def judge_debate(debate_id: int, evaluator=None) -> Verdict:
    """The pixel judge's verdict on a finished image debate (the stored one, if any).
    Raises Refused for a debate it cannot judge, pixel_debates.JudgeMissing without weights."""
    debate = Debate.objects.select_related("question").filter(pk=debate_id).first()
    if debate is None:
        raise Refused("no_such_debate", f"there is no debate {debate_id}")
    if not pixel_debates.is_pixel_debate(debate):
        raise Refused("not_pixel_debate", "the pixel judge judges image debates whose evidence is revealed pixels")
    if debate.status not in FINISHED:
        raise Refused("debate_not_over", "AI judges judge finished debates")
    mask = pixel_debates.revealed_pixels(debate)
    if not mask:
        raise Refused("nothing_revealed", "no pixel was revealed: the pixel judge has nothing to judge")
    pixels = judge_pixels_for(len(mask))
    name = ai_judge_name(pixels)
    existing = Verdict.objects.filter(debate=debate, judge_kind=Verdict.AI, ai_judge=name).first()
    if existing:
        return existing
    evaluator = evaluator or pixel_debates.judge_evaluator(pixels)
    image = np.asarray(debate.question.hidden_image, dtype=np.uint8)
    logits = np.asarray(evaluator(batch_judge_planes(image, [tuple(mask)])), dtype=np.float32)[0]
    return save_verdict(debate, logits, mask, pixel_debates.judge_identity(pixels))


def save_verdict(debate: Debate, logits, mask: list[int], judge: dict) -> Verdict:
    """Stores the judge's verdict from its logits on `mask` (once per debate and judge). A debate
    with no human judge waiting is complete after it."""
    with transaction.atomic():
        debate = Debate.objects.select_for_update(of=("self",)).select_related("question").get(pk=debate.pk)
        existing = Verdict.objects.filter(debate=debate, judge_kind=Verdict.AI, ai_judge=judge["name"]).first()
        if existing:
            return existing
        probabilities, options = _verdict_options(debate, logits, mask, judge)
        verdict, _ = verdicts.record_verdict(debate, probabilities, **options)
        return verdict


def save_selfplay_verdicts(debates: list[Debate], logits: list, masks: list[list[int]], judge: dict) -> list[Verdict]:
    """The verdicts on self-play debates just stored (no human judge, nobody watching), in bulk
    inside the caller's transaction; each debate is complete after its verdict."""
    options = [_verdict_options(d, row, mask, judge, turns=len(mask)) for d, row, mask in zip(debates, logits, masks)]
    return verdicts.record_many(debates, [p for p, _ in options], [o for _, o in options])


def _verdict_options(debate: Debate, logits, mask: list[int], judge: dict, turns: int | None = None):
    """(probabilities, record_verdict options) from the judge's logits on `mask`. turns: the
    debate's turn count when known (self-play: one per revealed pixel), else counted."""
    question = debate.question
    shown = ", ".join(f"{a}: {s:.2f}" for a, s in zip(question.answers, answer_logits(question, logits)))
    return verdict_probabilities(question, logits), dict(
        judge_kind=Verdict.AI,
        ai_judge=judge["name"],
        live=False,
        after_turn=turns,
        debater_turns=turns,
        reason=f"Judge network on the {len(mask)} revealed pixels; logits per answer: {shown}.",
        provenance={
            "judge": judge,
            "mask": [int(p) for p in mask],
            "logits": [float(x) for x in logits],
            "code_version": provenance.code_version(),
        },
    )
