"""Trajectories of iterative methods: the report_iterate hook, DIP's and Gatys' reports, the oracle scoring
in the worker, the store's table, the leaderboard's psnr@best and the report's plot."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest
import torch

from texbench.base import Synthesizer
from texbench.imageio import save_png, to_uint8
from texbench.probes import IterateScorer
from texbench.reports.leaderboard import leaderboard_markdown, leaderboard_tables
from texbench.runner import run_suite
from texbench.store import Store
from texbench.suite import expand, load_suite
from texbench.synthesizers.dip import DIP
from texbench.tasks import TaskInput, get_task

PLUGINS = str(Path(__file__).with_name("plugins_probes.py"))


@pytest.fixture(autouse=True)
def _plugins():
    from texbench.registry import load_plugin_file

    load_plugin_file(PLUGINS)


def _smooth(h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(3, h // 4, w // 4, generator=g)
    return torch.nn.functional.interpolate(x[None], size=(h, w), mode="bilinear", align_corners=False)[0]


def _quantised(t: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(to_uint8(t)).permute(2, 0, 1).float() / 255.0


class _Plain(Synthesizer):
    name = "plain"
    registered = "test class"
    tasks = ("denoise",)

    def run(self, task_input, *, seed, device):
        self.report_iterate(1, task_input.image)
        return task_input.image


def test_report_iterate_is_a_no_op_without_a_listener_and_checked_with_one():
    s = _Plain()
    assert not s.wants_iterates
    s.report_iterate(3, torch.zeros(3, 4, 4))  # nobody listens: nothing happens, nothing is checked
    got = []
    with s.iterates_to(lambda i, x: got.append((i, x))):
        assert s.wants_iterates
        s.report_iterate(7, torch.ones(3, 4, 4))
        with pytest.raises(ValueError, match="iteration must be a non-negative int"):
            s.report_iterate(-1, torch.ones(3, 4, 4))
        with pytest.raises(ValueError, match="iteration"):
            s.report_iterate(2.5, torch.ones(3, 4, 4))  # type: ignore[arg-type]
    assert not s.wants_iterates and [i for i, _ in got] == [7]


def test_iterate_scorer_scores_quantised_iterates_and_rejects_bad_ones():
    clean = _smooth(32, 32, 0)
    noisy = (clean + 0.05 * torch.randn(3, 32, 32)).clamp(0, 1)
    scorer = IterateScorer({"metric": "psnr", "ref": "clean", "reference": clean}, (32, 32), "m")
    scorer(10, noisy)
    scorer(20, clean)
    mse = ((_quantised(noisy).double() - _quantised(clean).double()) ** 2).mean()
    assert scorer.values[0] == pytest.approx(float(10 * torch.log10(1 / mse)), abs=1e-6)
    assert math.isinf(scorer.values[1]) or scorer.values[1] > 80
    with pytest.raises(ValueError, match="must increase"):
        scorer(20, clean)
    with pytest.raises(ValueError, match="shape"):
        scorer(30, clean[:, :16])
    with pytest.raises(ValueError, match="within"):
        scorer(40, clean + 2)
    r = scorer.result()
    assert r["iterations"] == [10, 20] and r["metric"] == "psnr" and r["higher_is_better"] is True


def _denoise_input(size: int = 32) -> tuple[TaskInput, torch.Tensor]:
    clean = _smooth(size, size, 1)
    ex = get_task("denoise").build({"clean": clean}, item="x", params=get_task("denoise").params({"sigma": 25}))
    return ex.input, clean


def _run_reporting(cls, params, inp, *, seed):
    """The method's ``tiny`` preset run twice: silently, then reporting its iterates. Returns the silent
    output, the reported run's output, its ``(iteration, iterate)`` reports and the reporting instance."""
    silent = cls.from_config("tiny", params).run(inp, seed=seed, device="cpu")
    got = []
    method = cls.from_config("tiny", params)
    with method.iterates_to(lambda i, x: got.append((i, x.clone()))):
        out = method.run(inp, seed=seed, device="cpu")
    return silent, out, got, method


@pytest.mark.parametrize("task", ["denoise", "sr4"])
def test_dip_reports_every_k_iterations_without_changing_its_output(task):
    inp, clean = _denoise_input()
    if task == "sr4":
        ex = get_task("sr4").build({"clean": clean}, item="x", params=get_task("sr4").params({}))
        inp = ex.input
    silent, out, got, _ = _run_reporting(DIP, {"iterations": 12, "report_every": 5}, inp, seed=3)
    assert [i for i, _ in got] == [5, 10, 12]  # every 5 and the last
    torch.testing.assert_close(out, silent, rtol=0, atol=0)  # the reports change nothing
    torch.testing.assert_close(got[-1][1], out, rtol=0, atol=0)  # the curve ends on the output
    assert not torch.equal(got[0][1], out)


def test_gatys_reports_about_every_k_evaluations_and_ends_on_its_output(monkeypatch):
    from texbench.synthesizers.gatys import Gatys
    from texbench.weights import RANDOM_INIT_ENV

    monkeypatch.setenv(RANDOM_INIT_ENV, "1")  # the trajectory, not the weights, is tested
    inp = TaskInput("texture", "x", (32, 32), image=_smooth(48, 48, 2))
    silent, out, got, g = _run_reporting(Gatys, {"max_evals": 14, "report_every": 4}, inp, seed=0)
    its = [i for i, _ in got]
    assert its == sorted(set(its)) and len(its) >= 3
    # one report per multiple of 4 crossed, at the first accepted iterate past it, then the final output
    assert all(b // 4 > a // 4 for a, b in zip(its, its[1:-1]))
    torch.testing.assert_close(out, silent, rtol=0, atol=0)
    torch.testing.assert_close(got[-1][1], out, rtol=0, atol=0)
    assert its[-1] == g.pop_info()["evals"]


def _suite(tmp_path: Path, methods: str, *, size: int = 32, n: int = 2) -> Path:
    data = tmp_path / "clean"
    data.mkdir()
    for i in range(n):
        save_png(_smooth(size, size, 10 + i), data / f"im{i}.png")
    p = tmp_path / "suite.toml"
    p.write_text(f"""
name = "traj"
seeds = [0]
[[task]]
name = "denoise"
datasets = {{ clean = {{ path = "{data}" }} }}
params = {{ sigma = 50 }}
metrics = [{{ metric = "psnr", ref = "clean" }}]
set_metrics = []
methods = [{methods}]
""")
    return p


def test_oracle_curve_is_scored_against_the_clean_image_by_the_runner(tmp_path):
    suite = load_suite(str(_suite(tmp_path, '{ name = "fader" }, { name = "gaussian-filter" }')))
    out = tmp_path / "run"
    run_suite(suite, out, progress=False, plugin_files=[PLUGINS])
    with Store(out, readonly=True) as store:
        tt = store.trajectories_frame()
        scores = store.scores_frame()
        tables = leaderboard_tables(store)
    assert set(tt["label"]) == {"fader"} and len(tt) == 2  # gaussian-filter reports nothing
    jobs = {j.item: j for j in expand(suite)}
    for _, r in tt.iterrows():
        ex = jobs[r["item"]].example
        noisy, clean = ex.input.image, ex.references["clean"]
        want = []
        for k in range(1, 5):
            x = _quantised((k / 4) * noisy + (1 - k / 4) * 0.5).double()
            want.append(float(10 * torch.log10(1 / ((x - _quantised(clean).double()) ** 2).mean())))
        assert r["iterations"] == [1, 2, 3, 4]
        assert r["values"] == pytest.approx(want, abs=1e-6)
        final = scores[(scores["job_key"] == r["job_key"]) & (scores["column"] == "psnr")]["value"].item()
        assert r["values"][-1] == pytest.approx(final, abs=1e-9)  # the last iterate is the saved output
    df = tables["denoise"]
    assert df.loc["fader", "psnr@best"] >= df.loc["fader", "psnr"] - 1e-12
    assert math.isnan(df.loc["gaussian-filter", "psnr@best"])
    assert df.attrs["oracle"] == ["psnr@best", "best iter"]
    assert df.index[0] == df["psnr"].idxmax()  # ranked by the final value, never by the oracle


def test_dip_in_a_suite_stores_its_fitting_curve_with_the_budget_the_suite_sets(tmp_path):
    """Acceptance: a suite with dip on denoising stores the fitting curve; psnr@best >= psnr; the report
    plots it. The suite picks DIP's iteration budget through the method's params."""
    methods = ('{ name = "dip", preset = "tiny", params = { iterations = 40, report_every = 10 }, label = "dip" },'
               ' { name = "gaussian-filter" }')
    suite = load_suite(str(_suite(tmp_path, methods, n=1)))
    out = tmp_path / "run"
    run_suite(suite, out, progress=False)
    with Store(out, readonly=True) as store:
        tt = store.trajectories_frame()
        df = leaderboard_tables(store)["denoise"]
        md = leaderboard_markdown(store)
    assert list(tt["label"]) == ["dip"] and tt["iterations"].iloc[0] == [10, 20, 30, 40]
    assert df.loc["dip", "psnr@best"] >= df.loc["dip", "psnr"] - 1e-12
    assert 10 <= df.loc["dip", "best iter"] <= 40
    assert "psnr@best (oracle) ↑" in md and "best iter (oracle)" in md and "never sees" in md
    page = (out / "report.html").read_text()
    assert "<h3>Trajectories (denoise)</h3>" in page and "<svg" in page and "<polyline" in page
    assert "psnr@best (oracle)" in page
    assert (out / "leaderboard.csv").read_text().splitlines()[0].count("psnr@best") >= 1


def test_a_store_without_the_trajectories_table_still_reports(tmp_path):
    suite = load_suite(str(_suite(tmp_path, '{ name = "fader" }', n=1)))
    out = tmp_path / "run"
    run_suite(suite, out, progress=False, plugin_files=[PLUGINS], write_report=False)
    con = sqlite3.connect(out / "results.sqlite")  # a run directory of an older texbench
    con.execute("DROP TABLE trajectories")
    con.execute("ALTER TABLE jobs DROP COLUMN peak_rss_bytes")
    con.execute("ALTER TABLE jobs DROP COLUMN peak_cuda_bytes")
    con.commit()
    con.close()
    with Store(out, readonly=True) as store:
        assert len(store.trajectories_frame()) == 0
        df = leaderboard_tables(store)["denoise"]
        assert "psnr@best" not in df and "peak RSS MiB" not in df
        leaderboard_markdown(store)
    with Store(out) as store:  # opened for writing, it is migrated
        assert len(store.trajectories_frame()) == 0
        assert "peak_rss_bytes" in store.jobs_frame()
