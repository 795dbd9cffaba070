"""Training the pixel judge: a stopped run resumes bit for bit, and a checkpoint of another run is refused."""

import numpy as np
import pytest
import torch

from debates.pixel.training import TrainingRun, train


def tiny_mnist(count=256, seed=0):
    rng = np.random.default_rng(seed)
    images = (rng.random((count, 28, 28)) < 0.2).astype(np.uint8) * rng.integers(
        1, 256, (count, 28, 28), dtype=np.uint8
    )
    return images, rng.integers(0, 10, count).astype(np.uint8)


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
def test_a_stopped_run_resumes_to_the_same_weights_as_an_unbroken_one(tmp_path):
    images, labels = tiny_mnist()
    run = TrainingRun(pixels=4, batches=6, batch_size=16, checkpoint_every=3)
    unbroken = weights(train(run, images, labels, tmp_path / "unbroken.ckpt"))

    class Stop(Exception):
        pass

    def stop_after_checkpoint(step, loss):
        if step == 4:  # after the checkpoint at step 3; step 4 is lost, as in a crash
            raise Stop

    with pytest.raises(Stop):
        train(run, images, labels, tmp_path / "broken.ckpt", stop_after_checkpoint)
    assert torch.load(tmp_path / "broken.ckpt", weights_only=False)["step"] == 3
    resumed = weights(train(run, images, labels, tmp_path / "broken.ckpt"))
    assert resumed.keys() == unbroken.keys()
    assert all(torch.equal(resumed[k], unbroken[k]) for k in unbroken)


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    images, labels = tiny_mnist()
    train(TrainingRun(pixels=4, batches=2, batch_size=16), images, labels, tmp_path / "run.ckpt")
    with pytest.raises(ValueError, match="different run"):
        train(TrainingRun(pixels=6, batches=2, batch_size=16), images, labels, tmp_path / "run.ckpt")


def test_the_trained_model_comes_back_on_the_cpu_in_eval_mode(tmp_path):
    images, labels = tiny_mnist()
    model = train(TrainingRun(pixels=6, batches=1, batch_size=16), images, labels, tmp_path / "run.ckpt")
    assert not model.training
    assert {p.device.type for p in model.parameters()} == {"cpu"}
