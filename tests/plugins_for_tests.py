"""Plugins used by the runner tests: good, slow and broken methods (loaded with --plugin)."""

import os
import time

import torch

from texbench.base import Synthesizer


class CopyInput(Synthesizer):
    name = "copy-input"
    description = "returns the degraded input unchanged (test plugin)"
    tasks = ("denoise",)

    def run(self, task_input, *, seed, device):
        return task_input.image.clone()


class SlowCopy(Synthesizer):
    name = "slow-copy"
    description = "the noisy input, slightly smoothed, after a pause (test plugin for kill -9)"
    tasks = ("denoise",)

    def run(self, task_input, *, seed, device):
        time.sleep(float(os.environ.get("TEXBENCH_TEST_SLEEP", "0.4")))
        x = task_input.image
        return (0.5 * x + 0.25 * x.roll(1, -1) + 0.25 * x.roll(-1, -1)).clamp(0, 1)


class Raiser(Synthesizer):
    name = "raiser"
    description = "always raises (test plugin)"
    tasks = ("denoise",)

    def run(self, task_input, *, seed, device):
        raise RuntimeError("deliberate failure in a plugin")


class NaNMaker(Synthesizer):
    name = "nan-maker"
    description = "returns NaN (test plugin)"
    tasks = ("denoise",)

    def run(self, task_input, *, seed, device):
        return torch.full((3, *task_input.size), float("nan"))


class WrongShape(Synthesizer):
    name = "wrong-shape"
    description = "returns the wrong shape (test plugin)"
    tasks = ("denoise",)

    def run(self, task_input, *, seed, device):
        return torch.zeros(3, task_input.size[0] + 1, task_input.size[1])


class TrainedBlur(Synthesizer):
    """Trains a 3-tap blur weight per dataset (shared by all its images) through the trained-weights
    cache, sleeping to make the training time measurable (test plugin)."""

    name = "trained-blur"
    description = "a blur whose weight is 'trained' once and cached (test plugin)"
    tasks = ("denoise",)

    def prepare(self, task_input, *, seed, device):
        from texbench.trained import load_or_train

        def train():
            time.sleep(0.3)
            return {"w": torch.tensor([0.25, 0.5, 0.25])}, {"loss": 0.0}

        self._trained = load_or_train({"method": self.name, "version": self.version}, train)
        self.record_training(self._trained)

    def run(self, task_input, *, seed, device):
        w = self._trained.state["w"]
        x = task_input.image
        return (w[0] * x.roll(1, -1) + w[1] * x + w[2] * x.roll(-1, -1)).clamp(0, 1)


class RandomInitReporter(Synthesizer):
    """Copies the input and records whether random-init weights are allowed where the job ran."""

    name = "random-init-reporter"
    description = "records TEXBENCH_ALLOW_RANDOM_WEIGHTS as the job saw it (test plugin)"
    tasks = ("denoise",)

    def run(self, task_input, *, seed, device):
        self.record(allow_random_weights=os.environ.get("TEXBENCH_ALLOW_RANDOM_WEIGHTS"))
        return task_input.image.clone()
