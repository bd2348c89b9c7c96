"""Leaderboards rank from what the store holds: each score's direction and each task's primary metric,
recorded when the run scored, so a report regenerated without the metric plugins ranks the same."""

from __future__ import annotations

import shutil
import sqlite3

import pandas as pd
import pytest
from test_runner import PLUGINS, _suite

from texbench import registry
from texbench.registry import PluginError, load_plugin_file
from texbench.reports.leaderboard import leaderboard_tables, write_leaderboard
from texbench.runner import run_suite
from texbench.store import Store
from texbench.suite import load_suite


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A denoise run where the worst PSNR (the noisy input itself) would come first if PSNR, higher is
    better, were ranked the wrong way."""
    tmp = tmp_path_factory.mktemp("ranking")
    load_plugin_file(PLUGINS)
    suite = load_suite(str(_suite(tmp, '{ name = "copy-input" }, { name = "gaussian-filter" }')))
    out = tmp / "run"
    run_suite(suite, out, progress=False, plugin_files=[PLUGINS])
    return out


def _without_metric_plugins(monkeypatch):
    def broken(name):
        raise PluginError(f"metric {name!r} failed to load: ImportError: (simulated)")

    monkeypatch.setattr(registry.metrics, "get", broken)


def _copy(run_dir, dest):
    """A copy of the run directory's store and grids (the reports write into it); returns a connection
    to the copied store."""
    dest.mkdir()
    for grid in run_dir.glob("grid_*.png"):
        shutil.copy(grid, dest / grid.name)
    src = sqlite3.connect(run_dir / "results.sqlite")
    dst = sqlite3.connect(dest / "results.sqlite")
    src.backup(dst)
    src.close()
    return dst


def test_every_score_stores_its_direction_and_the_task_its_primary(run_dir):
    with Store(run_dir) as st:
        scores = st.scores_frame()
        groups = st.group_scores_frame()
        assert st.primary_metrics() == {"denoise": "psnr"}
    direction = dict(zip(scores["metric"], scores["higher_is_better"]))
    assert direction["psnr"] == 1 and direction["ssim"] == 1 and direction["lpips"] == 0
    assert len(groups) and (groups["higher_is_better"] == 0).all()  # FID, KID: lower is better


def test_ranking_is_the_same_without_the_metric_plugins(run_dir, tmp_path, monkeypatch, capsys):
    with Store(run_dir) as st:
        before = leaderboard_tables(st)["denoise"]
    assert capsys.readouterr().err == ""
    assert before.index[0] == "gaussian-filter"  # PSNR: higher is better, and the filter beats the noise
    assert before["psnr"].iloc[0] > before["psnr"].iloc[1]
    md_before = (run_dir / "leaderboard.md").read_text()
    csv_before = (run_dir / "leaderboard.csv").read_text()

    _copy(run_dir, tmp_path / "copy").close()
    _without_metric_plugins(monkeypatch)
    with Store(tmp_path / "copy", create=False) as st:
        after = leaderboard_tables(st)["denoise"]
        write_leaderboard(st, tmp_path / "copy")
    pd.testing.assert_frame_equal(after, before)
    assert after.attrs == before.attrs
    assert after.attrs["directions"]["psnr"] is True and after.attrs["directions"]["fid"] is False
    assert (tmp_path / "copy" / "leaderboard.md").read_text() == md_before
    assert (tmp_path / "copy" / "leaderboard.csv").read_text() == csv_before
    assert "no ranking direction" not in capsys.readouterr().err


def test_an_older_run_directory_is_migrated_and_ranked_by_the_registry(run_dir, tmp_path, capsys):
    with Store(run_dir) as st:
        before = leaderboard_tables(st)["denoise"]
    con = _copy(run_dir, tmp_path / "old")
    # the layout of a run directory written before directions and primaries were stored
    con.execute("ALTER TABLE scores DROP COLUMN higher_is_better")
    con.execute("ALTER TABLE group_scores DROP COLUMN higher_is_better")
    con.execute("DROP TABLE tasks")
    con.commit()
    con.close()
    with Store(tmp_path / "old", create=False) as st:
        assert "higher_is_better" in st.scores_frame() and "higher_is_better" in st.group_scores_frame()
        assert st.scores_frame()["higher_is_better"].isna().all()
        assert st.primary_metrics() == {}
        after = leaderboard_tables(st)["denoise"]
    err = capsys.readouterr().err
    assert "no ranking direction is stored" in err and "psnr" in err and "installed metric plugins" in err
    pd.testing.assert_frame_equal(after, before)
    assert after.attrs == before.attrs


def test_the_stored_primary_metric_ranks(run_dir, tmp_path):
    con = _copy(run_dir, tmp_path / "lpips-first")
    con.execute("UPDATE tasks SET primary_metric = 'lpips' WHERE task = 'denoise'")
    con.commit()
    con.close()
    with Store(tmp_path / "lpips-first", create=False) as st:
        df = leaderboard_tables(st)["denoise"]
    assert df.attrs["primary"] == "lpips" and df.attrs["columns"][0] == "lpips"
    assert df["lpips"].iloc[0] == df["lpips"].min()  # lower is better


def test_set_level_scores_show_their_sample_size_and_small_fid_is_marked(run_dir):
    from texbench.reports.leaderboard import MIN_SAMPLES

    md = (run_dir / "leaderboard.md").read_text()
    csv = pd.read_csv(run_dir / "leaderboard.csv")
    with Store(run_dir) as st:
        df = leaderboard_tables(st)["denoise"]
    n = int(df["fid samples"].iloc[0])
    assert 0 < n < MIN_SAMPLES["fid"] and bool(df["fid unreliable"].iloc[0])
    assert not df["kid unreliable"].any()  # KID is the small-set metric: n shown, no mark
    assert f"(n={n}, unreliable)" in md and f"(n={int(df['kid samples'].iloc[0])})" in md
    assert {"fid samples", "fid unreliable", "kid samples"} <= set(csv.columns)
    assert "unbiased" in md and "negative" in md
    html = (run_dir / "report.html").read_text()
    assert f"(n={n}, unreliable)" in html
