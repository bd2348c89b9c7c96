"""End to end: suites run, resume, record failures and bad inputs, and report from the store."""

from __future__ import annotations

import json
import os
import sqlite3
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from texbench.cli import main
from texbench.registry import load_plugin_file
from texbench.runner import run_suite
from texbench.store import Store
from texbench.suite import SuiteError, load_suite

PLUGINS = str(Path(__file__).with_name("plugins_for_tests.py"))


def _images(folder: Path, n: int = 3, size: int = 32, corrupt: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        base = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
        img = Image.fromarray(base).resize((size, size), Image.Resampling.BICUBIC)
        img.save(folder / f"img{i}.png")
    if corrupt:
        (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return folder


def _suite(tmp_path: Path, methods: str, *, corrupt=False, extra="") -> Path:
    data = _images(tmp_path / "data", corrupt=corrupt)
    p = tmp_path / "s.toml"
    p.write_text(textwrap.dedent(f"""
        name = "t"
        seeds = [0]
        [[task]]
        name = "denoise"
        datasets = {{ clean = {{ path = "{data}" }} }}
        params = {{ sigma = 25 }}
        methods = [{methods}]
        {extra}
    """))
    return p


def test_run_resume_and_report(tmp_path, capsys):
    suite = load_suite(str(_suite(tmp_path, '{ name = "gaussian-filter" }, { name = "nl-means", preset = "tiny" }')))
    out = tmp_path / "run"
    s1 = run_suite(suite, out, progress=False)
    assert (s1.total, s1.ran, s1.failed) == (6, 6, 0)
    md = (out / "leaderboard.md").read_text()
    assert "## denoise" in md and "gaussian-filter" in md and "nl-means[tiny]" in md
    assert "- ranks: " in md and "- copying: " not in md  # no copy rule where nothing is scored for copying
    assert "copying:" not in (out / "report.html").read_text()
    assert (out / "grid_denoise.png").is_file()
    csv = pd.read_csv(out / "leaderboard.csv")
    assert set(csv["label"]) == {"gaussian-filter", "nl-means[tiny]"}
    assert csv["psnr"].between(20, 40).all()
    # a win or a tie, as the paired interval decides (#13: tied neighbours share a rank, 1 to 2)
    assert sorted(zip(csv["rank"], csv["rank hi"])) in ([(1, 1), (2, 2)], [(1, 2), (1, 2)])
    # resume: nothing re-runs, the message says so
    s2 = run_suite(suite, out, progress=False)
    assert s2.ran == 0 and s2.skipped == 6
    assert "already done" in capsys.readouterr().out
    # the report regenerates the same leaderboard from the store alone
    res = CliRunner().invoke(main, ["report", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "leaderboard.md").read_text() == md
    with Store(out) as st:
        assert st.integrity_check() == "ok"
        assert st.conn.execute("SELECT COUNT(*), COUNT(DISTINCT job_key) FROM jobs").fetchone() == (6, 6)


def test_failing_plugins_are_recorded_and_others_complete(tmp_path):
    load_plugin_file(PLUGINS)
    methods = ", ".join(f'{{ name = "{m}" }}' for m in ["raiser", "nan-maker", "wrong-shape", "copy-input"])
    suite = load_suite(str(_suite(tmp_path, methods, corrupt=True)))
    out = tmp_path / "run"
    summary = run_suite(suite, out, progress=False, plugin_files=[PLUGINS])
    assert summary.bad_inputs == 1 and summary.failed == 9 and summary.ran == 12
    with Store(out) as st:
        jobs = st.jobs_frame()
        errs = dict(zip(jobs["method"], jobs["error"]))
        assert "deliberate failure" in errs["raiser"]
        assert "non-finite" in errs["nan-maker"]
        assert "shape (3, 33, 32)" in errs["wrong-shape"]
        assert (jobs[jobs["method"] == "copy-input"]["status"] == "ok").all()
        assert st.scores_frame().query("label == 'copy-input'")["value"].notna().all()
        bad = st.bad_inputs_frame()
        assert list(bad["item"]) == ["broken"] and "broken.png" in bad["error"][0]
    md = (out / "leaderboard.md").read_text()
    assert "## Failures" in md and "deliberate failure" in md and "## Skipped inputs" in md
    assert "| copy-input" in md


@pytest.mark.parametrize(("executor", "before"), [("local", None), ("local", "0"), ("process", None)])
def test_allow_random_init_lasts_as_long_as_the_run(tmp_path, monkeypatch, executor, before):
    # the suite's allow_random_init reaches the jobs (worker processes included) and ends with the run
    if before is None:
        monkeypatch.delenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", raising=False)
    else:
        monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", before)
    load_plugin_file(PLUGINS)
    p = _suite(tmp_path, '{ name = "random-init-reporter" }')
    p.write_text("allow_random_init = true\n" + p.read_text())
    out = tmp_path / "run"
    run_suite(load_suite(str(p)), out, progress=False, write_report=False, plugin_files=[PLUGINS],
              executor=executor, workers=1)
    with Store(out) as st:
        infos = [json.loads(i) for i in st.jobs_frame()["info"]]
    assert [i["allow_random_weights"] for i in infos] == ["1"] * 3
    assert os.environ.get("TEXBENCH_ALLOW_RANDOM_WEIGHTS") == before


def test_suite_errors_are_clear(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('[[task]]\nname = "denoise"\ndatasets = { clean = "builtin-clean" }\nmethods = [{ name = "bicubic" }]\n')
    suite = load_suite(str(p))
    with pytest.raises(SuiteError, match="does not support task 'denoise'"):
        run_suite(suite, tmp_path / "r", progress=False)
    p.write_text('[[task]]\nname = "denoise"\nmethods = [{ name = "nl-means" }]\n')
    with pytest.raises(SuiteError, match="needs the role"):
        load_suite(str(p))
    p.write_text('[[task]]\nname = "denoise"\ndatasets = { clean = "builtin-clean" }\nmethods = [{ name = "nl-means", params = { patch_sise = 3 } }]\n')
    with pytest.raises(SuiteError, match="unknown parameter.*patch_sise"):
        run_suite(load_suite(str(p)), tmp_path / "r2", progress=False)
    with pytest.raises(SuiteError, match="unknown suite"):
        load_suite("no-such-suite")


def test_process_executor_gives_the_same_scores(tmp_path):
    suite = load_suite(str(_suite(tmp_path, '{ name = "gaussian-filter" }')))
    run_suite(suite, tmp_path / "a", progress=False, write_report=False)
    run_suite(suite, tmp_path / "b", progress=False, write_report=False, executor="process", workers=2)

    def scores(d):
        con = sqlite3.connect(d / "results.sqlite")
        return sorted(con.execute("SELECT job_key, column, value FROM scores"))

    assert scores(tmp_path / "a") == scores(tmp_path / "b")


def test_texture_seeds_and_style_pairs(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(textwrap.dedent("""
        name = "tex"
        [[task]]
        name = "texture"
        datasets = { exemplar = "builtin-textures" }
        limit = 2
        image_size = 32
        params = { size = 48 }
        seeds = [0, 1]
        methods = [{ name = "random-phase" }]
        [[task]]
        name = "style"
        datasets = { content = "builtin-content", style = "builtin-styles" }
        limit = 2
        image_size = 32
        methods = [{ name = "reinhard" }]
    """))
    s = run_suite(load_suite(str(p)), tmp_path / "r", progress=False)
    assert s.total == 2 * 2 + 2 * 2 and s.failed == 0
    with Store(tmp_path / "r") as st:
        jobs = st.jobs_frame()
    assert set(jobs.query("task == 'style'")["item"]) == {"astronaut+hubble-deep-field", "astronaut+cells",
                                                          "chelsea+hubble-deep-field", "chelsea+cells"}
    outs = jobs.query("task == 'texture'")
    assert outs["output_hash"].nunique() == 4  # different seeds, different textures


def test_ray_executor_gives_the_same_scores(tmp_path):
    pytest.importorskip("ray", reason="Ray is optional: pip install -e '.[ray]'")
    suite = load_suite(str(_suite(tmp_path, '{ name = "gaussian-filter" }')))
    run_suite(suite, tmp_path / "a", progress=False, write_report=False)
    run_suite(suite, tmp_path / "b", progress=False, write_report=False, executor="ray")

    def scores(d):
        con = sqlite3.connect(d / "results.sqlite")
        return sorted(con.execute("SELECT job_key, column, value FROM scores"))

    assert scores(tmp_path / "a") == scores(tmp_path / "b")


@pytest.mark.parametrize("name", ["quick", "paper", "dip-sr-set5", "dip-denoise", "johnson-sr-set5"])
def test_builtin_suites_are_valid(name):
    from texbench import registry
    from texbench.tasks import get_task

    suite = load_suite(name)
    for spec in suite.tasks:
        for m in spec.methods:
            cls = registry.synthesizers.get(m.name)
            assert spec.task in cls.tasks
            cls.from_config(m.preset, m.params)  # presets and parameters exist
        get_task(spec.task).params(spec.params)


def test_style_leaderboard_has_artfid(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")  # the arithmetic, not the pretrained values
    p = tmp_path / "s.toml"
    p.write_text(textwrap.dedent("""
        name = "artfid"
        [[task]]
        name = "style"
        datasets = { content = "builtin-content", style = "builtin-styles" }
        limit = 2
        image_size = 32
        pairs = "zip"
        methods = [{ name = "reinhard" }]
    """))
    run_suite(load_suite(str(p)), tmp_path / "r", progress=False, write_report=False)
    from texbench.reports.leaderboard import ARTFID, leaderboard_tables

    with Store(tmp_path / "r") as st:
        df = leaderboard_tables(st)["style"]
    row = df.loc["reinhard"]
    assert row[ARTFID] == pytest.approx((1 + row["lpips-content"]) * (1 + row["fid-style"]))
    assert df.attrs["directions"][ARTFID] is False


def test_training_time_is_reported_once_apart_from_inference(tmp_path):
    load_plugin_file(PLUGINS)
    suite = load_suite(str(_suite(tmp_path, '{ name = "trained-blur" }, { name = "gaussian-filter" }')))
    out = tmp_path / "run"
    run_suite(suite, out, progress=False, plugin_files=[PLUGINS])
    with Store(out) as st:
        jobs = st.jobs_frame()
    infos = [json.loads(i) for i in jobs[jobs["method"] == "trained-blur"]["info"]]
    assert sorted(i["train_cached"] for i in infos) == [False, True, True]  # one training, three images
    assert len({i["train_key"] for i in infos}) == 1
    csv = pd.read_csv(out / "leaderboard.csv").set_index("label")
    assert 0.3 <= csv.loc["trained-blur", "train s"] < 3  # counted once, not three times
    assert pd.isna(csv.loc["gaussian-filter", "train s"])
    assert "| train s" in (out / "leaderboard.md").read_text()


def test_html_report_links_every_output_and_escapes(tmp_path):
    import html.parser

    load_plugin_file(PLUGINS)
    suite = load_suite(str(_suite(tmp_path, '{ name = "gaussian-filter" }, { name = "raiser" }, '
                                            '{ name = "copy-input", label = "<b>copy</b>" }')))
    out = tmp_path / "run"
    run_suite(suite, out, progress=False, plugin_files=[PLUGINS])
    page = (out / "report.html").read_text()

    class Links(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.imgs, self.rows = [], 0

        def handle_starttag(self, tag, attrs):
            if tag == "img":
                self.imgs.append(dict(attrs)["src"])
            if tag == "tr":
                self.rows += 1

    p = Links()
    p.feed(page)
    with Store(out) as st:
        jobs = st.jobs_frame()
    ok = jobs[jobs["status"] == "ok"]
    # every item shows its inputs and each successful method's output; all links resolve in the run dir
    assert set(ok["output"]) <= set(p.imgs)
    assert all((out / src).is_file() for src in p.imgs)
    assert p.rows == 1 + 3  # header + three methods
    assert "&lt;b&gt;copy&lt;/b&gt;" in page and "<b>copy</b>" not in page
    assert "deliberate failure" in page  # the failure is listed
    assert 'class="best"' in page
    # regenerated from the store alone, identically
    before = page
    res = CliRunner().invoke(main, ["report", str(out), "--format", "html"])
    assert res.exit_code == 0 and res.output.strip().endswith("report.html")
    assert (out / "report.html").read_text() == before


def test_paired_difference_to_the_first_method(tmp_path):
    suite = load_suite(str(_suite(tmp_path, '{ name = "gaussian-filter" }, { name = "nl-means", preset = "tiny" }')))
    out = tmp_path / "run"
    run_suite(suite, out, progress=False)
    with Store(out) as st:
        sc = st.scores_frame()
    psnr = sc[sc["column"] == "psnr"].pivot_table(index="item", columns="label", values="value")  # one seed
    csv = pd.read_csv(out / "leaderboard.csv").set_index("label")
    first, second = csv.sort_values("rank").index
    diff = psnr[second] - psnr[first]
    assert csv.loc[second, "vs #1"] == pytest.approx(diff.mean(), rel=1e-9)
    assert csv.loc[second, "vs #1 n"] == 3 and csv.loc[first, "vs #1"] == 0
    # the paired interval is the t interval of the differences, narrower than the methods' own spread
    from texbench.reports.leaderboard import mean_ci

    assert csv.loc[second, "vs #1 ci95"] == pytest.approx(mean_ci(diff.tolist())[1])
    md = (out / "leaderboard.md").read_text()
    assert "| vs #1 " in md and "`vs #1`" in md


def test_paired_difference_averages_seeds_and_keeps_task_blocks_apart(tmp_path):
    # two denoise blocks on the same images (sigma 15 and 50), two seeds each: two tables, and in each the
    # pairs are its 3 inputs with seeds averaged per input, never (image, seed) rows of same-named items
    block = ('[[task]]\nname = "denoise"\ndatasets = {{ clean = {{ path = "{d}" }} }}\nparams = {{ sigma = {s} }}\n'
             'seeds = [0, 1]\nmethods = [{{ name = "gaussian-filter" }}, {{ name = "nl-means", preset = "tiny" }}]\n')
    data = _images(tmp_path / "data")
    p = tmp_path / "s.toml"
    p.write_text('name = "t"\n' + block.format(d=data, s=15) + block.format(d=data, s=50))
    out = tmp_path / "run"
    run_suite(load_suite(str(p)), out, progress=False)
    with Store(out) as st:
        # one job fails: its input keeps the other seed, and nothing is cross-joined
        key = st.jobs_frame().query("label == 'gaussian-filter' and seed == 1")["job_key"].iloc[0]
        st.conn.execute("UPDATE jobs SET status = 'failed' WHERE job_key = ?", (key,))
        st.conn.commit()
        sc = st.scores_frame()
        from texbench.reports.leaderboard import leaderboard_tables

        tables = leaderboard_tables(st)
    psnr = sc[sc["column"] == "psnr"]
    per_input = psnr.groupby(["label", "task_params", "item"])["value"].mean().unstack("label")
    assert len(per_input) == 6
    # each noise level is a table of its own (texbench.reports.tables): pairs are its 3 images
    assert sorted(tables) == ["denoise[data; sigma=15]", "denoise[data; sigma=50]"]
    for df in tables.values():
        sigma = df.attrs["task_params"]["sigma"]
        mine = per_input[[json.loads(p)["sigma"] == sigma for p in per_input.index.get_level_values("task_params")]]
        first, second = df.index[:2]
        assert df.loc[second, "vs #1 n"] == 3
        assert df.loc[second, "vs #1"] == pytest.approx((mine[second] - mine[first]).mean())


NODE_DOM = r"""
// a minimal DOM: just what the report's sorting script touches
function Cell(text, v) { return {textContent: text, dataset: {v: v}}; }
function Table(header, rows) {
  var t = {tBodies: [{rows: [], appendChild: function(r){ var i = this.rows.indexOf(r);
                                                        this.rows.splice(i, 1); this.rows.push(r); }}]};
  t.tBodies[0].rows = rows.map(function(r){ return {cells: r.map(function(c){ return Cell(c[0], c[1]); })}; });
  t.ths = header.map(function(h, i){ return {cellIndex: i, dataset: {}, closest: function(){ return t; },
                                             addEventListener: function(_, f){ this.click = f; }}; });
  return t;
}
var tables = JSON.parse(process.argv[2]).map(function(x){ return Table(x.header, x.rows); });
global.document = {querySelectorAll: function(){ return [].concat.apply([], tables.map(function(t){ return t.ths; })); }};
eval(process.argv[1]);
var t = tables[1];
t.ths[2].click();                       // ascending on the third column of the SECOND table
var a = t.tBodies[0].rows.map(function(r){ return r.cells[0].textContent; });
t.ths[2].click();                       // then descending
var b = t.tBodies[0].rows.map(function(r){ return r.cells[0].textContent; });
t.ths[0].click(); t.ths[0].click();     // the label column, twice: descending by name
var c = t.tBodies[0].rows.map(function(r){ return r.cells[0].textContent; });
console.log(JSON.stringify([a, b, c]));
"""


def test_html_sorting_script_sorts_each_table(tmp_path):
    import shutil
    import subprocess

    from texbench.reports import html as report_html

    if shutil.which("node") is None:
        pytest.skip("node is not installed: the report's sorting script is checked with node")
    tables = [
        {"header": ["label", "rank", "psnr"], "rows": [[["x", ""], ["1", "1"], ["9", "9"]]]},
        {"header": ["label", "rank", "sifid"],
         "rows": [[["b", ""], ["2", "2"], ["5.5", "5.5"]], [["a", ""], ["1", "1"], ["—", ""]],
                  [["c", ""], ["3", "3"], ["0.5", "0.5"]]]},
    ]
    res = subprocess.run(["node", "-e", NODE_DOM, report_html._JS, json.dumps(tables)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    asc, desc, by_name = json.loads(res.stdout)
    assert asc == ["c", "b", "a"]  # 0.5 < 5.5, the missing value last
    assert desc == ["b", "c", "a"]  # missing values stay last
    assert by_name == ["c", "b", "a"]
