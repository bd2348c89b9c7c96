"""Methods that misbehave the ways a real plugin can (loaded with --plugin by tests/test_faults.py only):
they end their process, call sys.exit(), or never return."""

import os
import sys
import time

from texbench.base import Synthesizer


class ExitInRun(Synthesizer):
    name = "exit-in-run"
    description = "calls sys.exit(3) in run (test plugin)"
    tasks = ("denoise",)

    def run(self, task_input, *, seed, device):
        sys.exit(3)


class ExitInPrepare(Synthesizer):
    name = "exit-in-prepare"
    description = "calls sys.exit('bye') in prepare (test plugin)"
    tasks = ("denoise",)

    def prepare(self, task_input, *, seed, device):
        sys.exit("bye")

    def run(self, task_input, *, seed, device):
        return task_input.image.clone()


class HardExit(Synthesizer):
    name = "hard-exit"
    description = "ends its process with os._exit(1) in run (test plugin)"
    tasks = ("denoise",)

    def run(self, task_input, *, seed, device):
        os._exit(1)


class Hang(Synthesizer):
    name = "hang"
    description = "never returns (test plugin)"
    tasks = ("denoise",)

    def run(self, task_input, *, seed, device):
        while True:
            time.sleep(1)


class WaitToBeKilled(Synthesizer):
    """Writes its process id to ``$TEXBENCH_TEST_PID_DIR/<item>-<seed>.pid`` and waits (up to 120 s) for a
    test to kill that process from outside, as a node's OOM killer or an operator would."""

    name = "wait-to-be-killed"
    description = "writes its PID, then waits to be killed from outside (test plugin)"
    tasks = ("denoise",)

    def run(self, task_input, *, seed, device):
        folder = os.environ["TEXBENCH_TEST_PID_DIR"]
        path = os.path.join(folder, f"{task_input.item}-{seed}.pid")
        with open(path + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(path + ".tmp", path)
        time.sleep(120)
        return task_input.image.clone()
