"""Verdicts that mean what they say (#13): methods that copy rank after those that synthesise, in every
leaderboard format; adjacent methods whose paired difference is not significant share a rank; report.html
draws the quality/copying trade-off. Stores are written by hand here, so the right answer is known."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from texbench.reports.html import report_html, tradeoff_svg
from texbench.reports.leaderboard import (
    display_table,
    leaderboard_markdown,
    leaderboard_tables,
    write_leaderboard,
)
from texbench.reports.verdicts import COPIES, COPY_THRESHOLD, RANK_HI, VS_NEXT, paired_difference
from texbench.store import Store

ITEMS = [f"img{i}" for i in range(6)]


def _write(store: Store, task: str, label: str, scores: dict[str, list[float]], *, seeds=(0,),
           directions: dict[str, bool] | None = None) -> None:
    """One label's jobs (one per item and seed) with per-image scores ``column -> value per item`` (the
    same value for every seed of an item, plus ``0.001 * seed`` so seeds differ)."""
    directions = {"sifid": False, "copy-fraction": False, "psnr": True, **(directions or {})}
    n = len(next(iter(scores.values())))
    for i, item in enumerate(ITEMS[:n]):
        for seed in seeds:
            key = f"{task}-{label}-{item}-{seed}"
            store.write_job({"job_key": key, "task": task, "dataset": "synthetic", "item": item, "method": label,
                             "label": label, "params": {}, "version": "1", "seed": seed, "task_params": {},
                             "input_hashes": {"exemplar": f"h{item}"}, "status": "ok", "seconds": 0.1})
            store.write_scores(key, [{"column": col, "metric": col, "ref": "exemplar", "value": v[i] + 0.001 * seed,
                                      "higher_is_better": directions[col]} for col, v in scores.items()])


def _set_score(store: Store, task: str, label: str, value: float) -> None:
    """A set-level FID of one label (a column with no per-image scores)."""
    store.write_group_score({"group_key": f"{task}-{label}", "column": "fid", "task": task, "dataset": "synthetic",
                             "label": label, "seed": 0, "metric": "fid", "ref": "exemplar", "members": [],
                             "value": value, "extra": {"n_outputs": 6, "n_references": 6}, "higher_is_better": False})


@pytest.fixture()
def texture_store(tmp_path):
    """A texture task where the copier has the best SiFID by far; 'clear' beats 'tie-a'/'tie-b' on every
    image; 'tie-a' and 'tie-b' differ by +-1 alternately (paired mean 0)."""
    st = Store(tmp_path)
    st.set_primary_metrics({"texture": "sifid"})
    base = [100.0, 140.0, 80.0, 120.0, 90.0, 110.0]
    _write(st, "texture", "copier", {"sifid": [b - 60 for b in base], "copy-fraction": [0.72, 0.75, 0.7, 0.74, 0.71, 0.73]},
           seeds=(0, 1))
    _write(st, "texture", "clear", {"sifid": [b - 20 for b in base], "copy-fraction": [0.0] * 6}, seeds=(0, 1))
    _write(st, "texture", "tie-a", {"sifid": [b + (1 if i % 2 else -1) for i, b in enumerate(base)],
                                    "copy-fraction": [0.01] * 6}, seeds=(0, 1))
    _write(st, "texture", "tie-b", {"sifid": [b + (-1 if i % 2 else 1) + 0.1 for i, b in enumerate(base)],
                                    "copy-fraction": [0.02] * 6}, seeds=(0, 1))
    for lab, fid in (("copier", 50.0), ("clear", 90.0), ("tie-a", 120.0), ("tie-b", 121.0)):
        _set_score(st, "texture", lab, fid)
    yield st
    st.close()


def test_a_copier_ranks_after_every_method_that_synthesises(texture_store):
    df = leaderboard_tables(texture_store)["texture"]
    assert df.loc["copier", "sifid"] < df.loc["clear", "sifid"]  # the best score ...
    assert list(df.index) == ["clear", "tie-a", "tie-b", "copier"]  # ... ranks last
    assert df[COPIES].tolist() == [False, False, False, True]
    assert df.loc["copier", "rank"] == 4 and df.loc["copier", RANK_HI] == 4
    assert df.attrs["copy_column"] == "copy-fraction"


def test_a_clear_win_and_a_clear_tie(texture_store):
    df = leaderboard_tables(texture_store)["texture"]
    # clear vs tie-a: +20 on every image -> a win, rank 1 alone
    assert df.loc["clear", f"{VS_NEXT} verdict"] == "win"
    assert df.loc["clear", VS_NEXT] == pytest.approx(20.0, abs=1e-9)
    assert (df.loc["clear", "rank"], df.loc["clear", RANK_HI]) == (1, 1)
    # tie-a vs tie-b: differences +2.1, -1.9, ... (mean 0.1, t interval ~ +-2.2 over 6 inputs) -> a tie
    assert df.loc["tie-a", f"{VS_NEXT} verdict"] == "tie"
    assert df.loc["tie-a", f"{VS_NEXT} n"] == 6  # inputs, not inputs x seeds
    assert (df.loc["tie-a", "rank"], df.loc["tie-a", RANK_HI]) == (2, 3)
    assert (df.loc["tie-b", "rank"], df.loc["tie-b", RANK_HI]) == (2, 3)
    # the last synthesiser and the copier are never compared: the copy rule separates them
    assert df.loc["tie-b", f"{VS_NEXT} verdict"] == ""
    shown = display_table(df)
    assert shown["rank"].tolist() == ["1", "2–3", "2–3", "4"]
    assert shown[COPIES].tolist() == ["", "", "", "copies"]
    assert shown[VS_NEXT].iloc[0].endswith("(n=6): win") and shown[VS_NEXT].iloc[1].endswith("(n=6): tie")


def test_paired_difference_against_a_hand_computed_t_interval():
    idx = pd.MultiIndex.from_tuples([(lab, "d", it, "{}", "{}") for lab in "ab" for it in "xyz"],
                                    names=["label", "dataset", "item", "task_params", "input_hashes"])
    per_input = pd.Series([1.0, 2.0, 3.0, 2.0, 4.0, 6.0], index=idx)
    m, h, n = paired_difference(per_input, "a", "b")  # b - a = 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.3027
    assert (m, n) == (2.0, 3)
    assert h == pytest.approx(4.302652729911275 / math.sqrt(3), rel=1e-9)
    m, h, n = paired_difference(per_input, "a", "missing")
    assert n == 0 and math.isnan(m) and math.isnan(h)


def test_too_few_pairs_claim_neither_a_tie_nor_a_win(tmp_path):
    with Store(tmp_path) as st:
        st.set_primary_metrics({"denoise": "psnr"})
        _write(st, "denoise", "one", {"psnr": [30.0]})
        _write(st, "denoise", "two", {"psnr": [20.0]})
        df = leaderboard_tables(st)["denoise"]
        md = leaderboard_markdown(st)
    assert df.loc["one", f"{VS_NEXT} verdict"] == "untested" and df.loc["one", f"{VS_NEXT} n"] == 1
    assert display_table(df)["rank"].tolist() == ["1?", "2?"]
    assert "too few pairs (n=1)" in md


def test_restoration_tasks_are_not_marked_and_keep_the_old_order(tmp_path):
    with Store(tmp_path) as st:
        st.set_primary_metrics({"denoise": "psnr"})
        _write(st, "denoise", "low", {"psnr": [20.0, 21.0, 22.0]})
        _write(st, "denoise", "high", {"psnr": [30.0, 31.5, 32.0]})
        _set_score(st, "denoise", "high", 80.0)
        df = leaderboard_tables(st)["denoise"]
    assert list(df.index) == ["high", "low"] and not df[COPIES].any()
    assert df.attrs["copy_column"] is None and COPIES not in display_table(df)


def test_every_format_carries_the_mark_and_states_the_rules(texture_store):
    md_path = write_leaderboard(texture_store)
    md = md_path.read_text()
    assert f"above {COPY_THRESHOLD}" in md and "share a rank" in md and "Student-t" in md
    row = next(line for line in md.splitlines() if line.startswith("| copier"))
    assert "copies" in row
    csv = pd.read_csv(md_path.with_suffix(".csv"))
    assert csv[COPIES].dtype == bool
    assert csv.set_index("label").loc["copier", COPIES] and not csv.set_index("label").loc["clear", COPIES]
    page = (md_path.parent / "report.html").read_text()
    assert '<tr class="copies">' in page and f"above {COPY_THRESHOLD}" in page


def test_report_html_draws_the_tradeoff_with_one_point_per_method(texture_store):
    tables = leaderboard_tables(texture_store)
    page = report_html(texture_store, tables)
    svg = re.search(r'<svg class="tradeoff".*?</svg>', page, re.S)
    assert svg is not None
    points = dict(re.findall(r'<circle class="method"[^>]*data-label="([^"]+)" data-x="([^"]+)"', svg.group(0)))
    assert set(points) == {"copier", "clear", "tie-a", "tie-b"}
    assert float(points["copier"]) == pytest.approx(0.7255, abs=1e-9)  # seeds add 0.001 * seed
    assert 'data-copies="1"' in svg.group(0)
    # the frontier: clear (0 copying, 2nd best) and the copier (better, but copies); not the tie pair
    frontier = re.search(r'class="frontier" points="([^"]+)"', svg.group(0)).group(1).split()
    assert len(frontier) == 2


def test_no_tradeoff_without_a_copying_measure(tmp_path):
    with Store(tmp_path) as st:
        st.set_primary_metrics({"denoise": "psnr"})
        _write(st, "denoise", "a", {"psnr": [20.0, 21.0]})
        df = leaderboard_tables(st)["denoise"]
    assert tradeoff_svg(df, "denoise") == ""


SUITE = """
name = "verdicts"
seeds = [0]
[[task]]
name = "texture"
datasets = { exemplar = "builtin-textures" }
limit = 2
image_size = 64
params = { size = 64 }
metrics = [ { metric = "stats-distance", ref = "exemplar" }, { metric = "copy-fraction", ref = "exemplar" } ]
set_metrics = []
methods = [ { name = "random-phase" }, { name = "quilting" } ]
[[task]]
name = "style"
datasets = { content = "builtin-content", style = "builtin-styles" }
limit = 2
image_size = 64
pairs = "zip"
metrics = [ { metric = "stats-distance", ref = "style" }, { metric = "copy-fraction", ref = "style" } ]
set_metrics = []
methods = [ { name = "reinhard" }, { name = "quilting-transfer", preset = "tiny" } ]
"""


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """A real run of the patch methods and two that do not copy, on the built-in images."""
    from texbench.runner import run_suite
    from texbench.suite import load_suite

    tmp = tmp_path_factory.mktemp("verdicts")
    (tmp / "s.toml").write_text(SUITE)
    run_suite(load_suite(str(tmp / "s.toml")), tmp / "run", progress=False)
    return tmp / "run"


def test_a_real_run_marks_the_patch_methods_in_texture_and_style(real_run):
    with Store(real_run, readonly=True) as st:
        tables = leaderboard_tables(st)
    tex, sty = tables["texture"], tables["style"]
    assert tex.loc["quilting", COPIES] and not tex.loc["random-phase", COPIES]
    assert sty.loc["quilting-transfer[tiny]", COPIES] and not sty.loc["reinhard", COPIES]
    assert tex.index[-1] == "quilting" and sty.index[-1] == "quilting-transfer[tiny]"
    csv = pd.read_csv(real_run / "leaderboard.csv")
    assert csv.set_index(["task", "label"]).loc[("style", "quilting-transfer[tiny]"), COPIES]
    assert len(re.findall(r'<svg class="tradeoff"', (real_run / "report.html").read_text())) == 2


def test_the_terminal_report_carries_the_mark(texture_store):
    from click.testing import CliRunner

    from texbench.cli import main

    res = CliRunner().invoke(main, ["report", str(texture_store.root), "--no-grids"])
    assert res.exit_code == 0, res.output
    row = next(line for line in res.output.splitlines() if line.startswith("| copier"))
    assert "| copies " in row and "| 4 " in row
    assert "- copying: " in res.output and "- ranks: " in res.output
