"""The judge network behind the evaluator interface (debates/pixel/evaluator.py).

Uses untrained networks with fixed seeds (the trained judges are not needed): the sparse forward
pass must give the plain forward pass's logits for any set of revealed pixels.
"""

import numpy as np
import pytest
import torch

from debates.pixel.evaluator import JudgeEvaluator
from debates.pixel.game import PIXEL_COUNT, batch_judge_planes
from debates.pixel.judge_net import PixelJudge


def seeded_judge(seed):
    torch.manual_seed(seed)
    model = PixelJudge()
    with torch.no_grad():  # larger biases than the default init, so the background matters
        for layer in (model.features[0], model.features[3]):
            layer.bias.normal_(0.0, 0.3)
    return model


def random_positions(rng, count, image):
    nonzero = np.flatnonzero(image.reshape(-1))
    return [tuple(rng.choice(nonzero, size=int(rng.integers(0, 7)), replace=False)) for _ in range(count)]


@pytest.mark.parametrize("seed", [0, 1])
def test_sparse_forward_pass_gives_the_plain_logits(seed):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(28, 28)).astype(np.uint8)
    image[rng.random((28, 28)) < 0.3] = 0
    # corners and edges, where the footprints are clipped by the border
    image.reshape(-1)[[0, 27, 28 * 27, PIXEL_COUNT - 1, 1, 28, 28 * 14 + 27]] = 255
    positions = random_positions(rng, 150, image) + [(), (0, 27, 756, 783, 1, 28), (783,), (0,)]
    planes = batch_judge_planes(image, positions)
    model = seeded_judge(seed)
    plain = JudgeEvaluator(model)(planes)
    sparse = JudgeEvaluator(model, sparse=True)(planes)
    assert plain.shape == sparse.shape == (len(positions), 10)
    assert np.abs(plain - sparse).max() < 1e-4
    assert (plain.argmax(1) == sparse.argmax(1)).all()


def test_logits_do_not_depend_on_the_batch():
    rng = np.random.default_rng(3)
    image = rng.integers(1, 256, size=(28, 28)).astype(np.uint8)
    planes = batch_judge_planes(image, random_positions(rng, 20, image))
    for sparse in (False, True):
        evaluator = JudgeEvaluator(seeded_judge(2), sparse=sparse, max_batch=7)
        together = evaluator(planes)
        alone = np.concatenate([evaluator(planes[i : i + 1]) for i in range(len(planes))])
        assert np.abs(together - alone).max() < 1e-4
    assert evaluator.evaluations == 40 and evaluator.calls == 21


def test_bad_inputs_and_options_are_refused():
    evaluator = JudgeEvaluator(seeded_judge(0))
    with pytest.raises(ValueError, match="shape"):
        evaluator(np.zeros((3, 28, 28), dtype=np.float32))
    with pytest.raises(ValueError, match="device"):
        JudgeEvaluator(seeded_judge(0), device="tpu")
    with pytest.raises(ValueError, match="max_batch"):
        JudgeEvaluator(seeded_judge(0), max_batch=0)
    assert evaluator(np.zeros((0, 2, 28, 28), dtype=np.float32)).shape == (0, 10)
