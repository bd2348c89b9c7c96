"""One leaderboard table per task variant (task, dataset, task parameters): a suite that denoises two sets at
two noise levels gets four tables, never one row per method averaged over noise levels and sets."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from texbench.cli import main
from texbench.reports.leaderboard import grid_name, leaderboard_tables, write_leaderboard
from texbench.reports.tables import file_stem, table_of_jobs
from texbench.runner import run_suite
from texbench.store import Store
from texbench.suite import load_suite

LIGHT = 'metrics = [{ metric = "psnr", ref = "clean" }]\nset_metrics = []'


#: a fixed blur: far worse than the input when the noise is slight, far better when it is heavy
GAUSS = '{ name = "gaussian-filter", params = { sigma_px = 1.5 } }'


def _images(folder, n: int = 3, size: int = 32, seed: int = 0):
    """``n`` smooth random colour images (a set of its own for each ``seed``)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        base = rng.integers(0, 256, (size // 2, size // 2, 3), dtype=np.uint8)
        Image.fromarray(base).resize((size, size), Image.Resampling.BICUBIC).save(folder / f"img{i}.png")
    return folder


def _task(data, sigma: int, methods: str, seeds: str = "[0]") -> str:
    return textwrap.dedent(f"""
        [[task]]
        name = "denoise"
        datasets = {{ clean = {{ path = "{data}" }} }}
        params = {{ sigma = {sigma} }}
        seeds = {seeds}
        methods = [{methods}]
        {LIGHT}
    """)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """``identity`` (the noisy input) against a 1.5-pixel ``gaussian-filter`` on two sets of detailed images
    at σ = 2 and σ = 60: at σ = 2 the input is nearly clean and wins by far; at σ = 60 the filter wins. The σ = 60 tables also hold a
    second ``[[task]]`` on the same inputs with two seeds (as the standard suite splits deterministic and
    stochastic methods), which must join them, not make a table of its own."""
    tmp = tmp_path_factory.mktemp("tables")
    a, b = _images(tmp / "seta"), _images(tmp / "setb", seed=1)
    tasks = ""
    for data in (a, b):
        for sigma in (2, 60):
            tasks += _task(data, sigma, f'{{ name = "identity" }}, {GAUSS}')
        tasks += _task(data, 60, '{ name = "gaussian-filter", params = { sigma_px = 1.0 }, label = "gauss-seeds" }',
                       seeds="[0, 1]")
    (tmp / "s.toml").write_text('name = "variants"\nseeds = [0]\n' + tasks)
    out = tmp / "run"
    run_suite(load_suite(str(tmp / "s.toml")), out, progress=False)
    return out


def test_one_table_per_variant_titled_like_the_plan(run_dir):
    with Store(run_dir) as st:
        tables = leaderboard_tables(st)
    assert list(tables) == ["denoise[seta; sigma=2]", "denoise[seta; sigma=60]",
                            "denoise[setb; sigma=2]", "denoise[setb; sigma=60]"]
    for title, df in tables.items():
        assert df.attrs["task"] == "denoise" and df.attrs["dataset"] in title
        assert df.attrs["task_params"]["sigma"] == (2 if "sigma=2]" in title else 60)
    # the two-seed [[task]] on the σ = 60 inputs is a row of the σ = 60 tables, with 3 images × 2 seeds
    assert set(tables["denoise[seta; sigma=60]"].index) == {"identity", "gaussian-filter", "gauss-seeds"}
    assert tables["denoise[seta; sigma=60]"].loc["gauss-seeds", "psnr n"] == 6
    assert set(tables["denoise[seta; sigma=2]"].index) == {"identity", "gaussian-filter"}
    assert (tables["denoise[seta; sigma=2]"]["psnr n"] == 3).all()


def test_split_tables_give_the_winner_averaging_would_get_wrong(run_dir):
    with Store(run_dir) as st:
        tables = leaderboard_tables(st)
        scores = st.scores_frame()
    psnr = scores[scores["column"] == "psnr"]
    pooled = psnr[psnr["label"].isin(["identity", "gaussian-filter"])].groupby("label")["value"].mean()
    # what one row per method over both noise levels and both sets would have said
    assert pooled.idxmax() == "identity"
    for title, df in tables.items():
        winner = df.index[df["rank"] == 1].tolist()
        if "sigma=60" in title:
            assert "identity" not in winner and df.loc["identity", "rank"] == df["rank"].max()
        else:
            assert winner == ["identity"]
        # each table's means are over its own inputs only
        mine = psnr[(psnr["dataset"] == df.attrs["dataset"]) & (psnr["label"] == "identity")
                    & (psnr["task_params"].map(lambda p: json.loads(p)["sigma"]) == df.attrs["task_params"]["sigma"])]
        assert df.loc["identity", "psnr"] == pytest.approx(mine["value"].mean())


def test_markdown_csv_html_and_grids_are_split(run_dir):
    with Store(run_dir) as st:
        md_path = write_leaderboard(st)
    md = md_path.read_text()
    for title in ("denoise[seta; sigma=2]", "denoise[setb; sigma=60]"):
        assert f"## {title}:" in md
    assert "## denoise:" not in md
    assert "dataset: seta; task parameters: " in md and "sigma=60" in md
    csv = pd.read_csv(run_dir / "leaderboard.csv")
    assert {"task", "table", "dataset", "task params"} <= set(csv.columns)
    assert csv.groupby(["table", "label"]).size().max() == 1  # one row per table × method: unambiguous
    assert len(csv) == 2 * 2 + 2 * 3
    assert set(csv["task"]) == {"denoise"}
    assert sorted({json.loads(p)["sigma"] for p in csv["task params"]}) == [2, 60]
    html = (run_dir / "report.html").read_text()
    assert "<h2>denoise[seta; sigma=2]</h2>" in html and "<h2>denoise[setb; sigma=60]</h2>" in html


def test_cli_report_and_grids_are_per_table(run_dir):
    from texbench.reports.grid import write_grids

    with Store(run_dir) as st:
        written = {p.name for p in write_grids(st)}
    assert written == {"grid_denoise_seta_sigma_2.png", "grid_denoise_seta_sigma_60.png",
                       "grid_denoise_setb_sigma_2.png", "grid_denoise_setb_sigma_60.png"}
    res = CliRunner().invoke(main, ["report", str(run_dir), "--format", "csv"])
    assert res.exit_code == 0, res.output
    assert "denoise[setb; sigma=2]" in res.output
    md = CliRunner().invoke(main, ["report", str(run_dir)]).output
    assert "![denoise[seta; sigma=2] examples](grid_denoise_seta_sigma_2.png)" in md.replace("\\", "")


def test_single_variant_keeps_the_task_name(tmp_path):
    data = _images(tmp_path / "data")
    (tmp_path / "s.toml").write_text('name = "one"\nseeds = [0]\n'
                                     + _task(data, 25, '{ name = "identity" }')
                                     + _task(data, 25, GAUSS, seeds="[0, 1]"))
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "--suite", str(tmp_path / "s.toml"), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "Tables: denoise\n" in res.output  # the run's summary names its tables
    with Store(out) as st:
        assert list(leaderboard_tables(st)) == ["denoise"]
    assert (out / "grid_denoise.png").is_file()
    assert "## denoise:" in (out / "leaderboard.md").read_text()
    assert set(pd.read_csv(out / "leaderboard.csv")["table"]) == {"denoise"}


def test_titles_name_only_what_differs():
    jobs = pd.DataFrame({
        "job_key": ["a", "b", "c"], "task": ["sr4", "sr4", "texture"], "dataset": ["set5", "set14", "x"],
        "task_params": [json.dumps({"scale": 4})] * 2 + [json.dumps({"size": 64})],
    })
    tables = table_of_jobs(jobs, ["texture", "sr4"])
    assert list(tables) == ["texture", "sr4[set14]", "sr4[set5]"]  # task order given, then datasets by name
    assert tables["sr4[set14]"]["job_keys"] == ["b"]
    assert grid_name("texture") == "grid_texture.png" and file_stem("sr4[set14]") == "sr4_set14"


def test_seed_groups_never_mix_variants(tmp_path):
    """The scoring pass groups a seed pair within one task variant (sets use the same grouping key): the
    same image and method at σ = 2 and σ = 60 are two seed groups, each in its own table."""
    data = _images(tmp_path / "data")
    diversity = 'metrics = [{ metric = "psnr", ref = "clean" }, { metric = "ssim", ref = "seeds", column = "seed-ssim" }]'
    tasks = "".join(_task(data, s, GAUSS, seeds="[0, 1]").replace(LIGHT, diversity + "\nset_metrics = []")
                    for s in (2, 60))
    (tmp_path / "s.toml").write_text('name = "groups"\nseeds = [0]\n' + tasks)
    out = tmp_path / "run"
    run_suite(load_suite(str(tmp_path / "s.toml")), out, progress=False)
    with Store(out) as st:
        groups = st.group_scores_frame()
        jobs = st.jobs_frame()
        tables = leaderboard_tables(st)
    sigma_of = {k: json.loads(p)["sigma"] for k, p in zip(jobs["job_key"], jobs["task_params"])}
    assert len(groups) == 2 * 3  # 3 images x 2 noise levels, each a pair of seeds
    for members in groups["members"]:
        keys = json.loads(members)
        assert len(keys) == 2 and len({sigma_of[k] for k in keys}) == 1
    for df in tables.values():
        assert df.loc["gaussian-filter", "seed-ssim n"] == 3
