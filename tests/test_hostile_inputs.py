"""Nothing a user does takes a run down (#16): hostile input files, bad suite values, stale results,
shadowing plugins, store and file-system faults. Every hostile file is generated here, never committed."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from texbench import registry
from texbench.cli import main
from texbench.cli.common import user_error
from texbench.imageio import DEFAULT_MAX_PIXELS, ImageError, display_name, load_image, pixel_budget
from texbench.runner import run_suite
from texbench.store import Store, StoreError
from texbench.suite import SuiteError, expand, load_suite

REPO = Path(__file__).resolve().parents[1]
#: cheap metrics, so these tests need no network weights
CHEAP_METRICS = 'metrics = [{ metric = "psnr", ref = "clean" }]\nset_metrics = []'


# --------------------------------------------------------------------------------------------- fixtures
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(path: Path, side: int = 100_000) -> Path:
    """A PNG of a few dozen bytes whose header declares ``side`` x ``side`` 8-bit RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
                     + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""))
    return path


def _good(path: Path, size: int = 40, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
    Image.fromarray(base).resize((size, size), Image.Resampling.BICUBIC).save(path)
    return path


def hostile_folder(folder: Path) -> tuple[list[str], list[str]]:
    """Good images mixed with every kind of hostile file; returns (good ids, bad ids)."""
    folder.mkdir(parents=True)
    good = []
    for i in range(3):
        _good(folder / f"good{i}.png", seed=i)
        good.append(f"good{i}")
    # a name that is not UTF-8 (Latin-1 "café"), written through the bytes API
    with open(os.path.join(os.fsencode(folder), b"caf\xe9.png"), "wb") as fh:
        _good(folder / "tmp.png", seed=9)
        fh.write((folder / "tmp.png").read_bytes())
    (folder / "tmp.png").unlink()
    good.append("caf\\xe9")
    bomb_png(folder / "bomb.png")
    # 10000 x 10000 grayscale: ~100 KB on disk, 100 megapixels (over the 64 MP default budget)
    Image.new("L", (10_000, 10_000), 128).save(folder / "huge.png", optimize=False)
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.png").write_text("not an image at all\n")
    full = (folder / "good0.png").read_bytes()
    (folder / "truncated.png").write_bytes(full[: len(full) // 2])
    Image.new("RGB", (1, 1), (200, 10, 10)).save(folder / "tiny.png")
    return good, ["bomb", "huge", "empty", "text", "truncated", "tiny"]


def _suite_file(tmp_path: Path, body: str, name: str = "s.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(body))
    return p


# ----------------------------------------------------------------------------------------------- pixels
def test_a_decompression_bomb_is_an_image_error_naming_file_and_limit(tmp_path):
    p = bomb_png(tmp_path / "bomb.png")
    assert p.stat().st_size < 200
    with pytest.raises(ImageError) as e:
        load_image(p)
    msg = str(e.value)
    assert "bomb.png" in msg and "100000x100000" in msg and str(DEFAULT_MAX_PIXELS) in msg and "\n" not in msg


def test_the_pixel_budget_is_checked_before_decoding_and_can_be_raised(tmp_path):
    p = tmp_path / "big.png"
    Image.new("RGB", (1200, 1000), (1, 2, 3)).save(p)
    with pytest.raises(ImageError, match="1200x1000.*1000000"):
        load_image(p, max_pixels=1_000_000)
    with pixel_budget(1_000_000), pytest.raises(ImageError, match="max_pixels"):
        load_image(p)
    with pixel_budget(1_200_000):
        assert load_image(p).shape == (3, 1000, 1200)
    with pytest.raises(ValueError, match="max_pixels"):
        with pixel_budget(0):
            pass


def test_float32_decoding_is_the_float64_result_rounded(tmp_path):
    """8-bit images are divided in float32: IEEE division is correctly rounded, so this equals the old
    float64 division rounded to float32, for every byte value."""
    v = np.arange(256, dtype=np.uint8)
    rgb = np.stack([v, v[::-1], v], axis=1)[None].repeat(2, axis=0)
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "rgb.png")
    expected = (rgb / 255.0).astype(np.float32).transpose(2, 0, 1)
    np.testing.assert_array_equal(load_image(tmp_path / "rgb.png").numpy(), expected)
    Image.fromarray(rgb[..., 1], mode="L").save(tmp_path / "gray.png")
    gray = load_image(tmp_path / "gray.png").numpy()
    np.testing.assert_array_equal(gray, np.repeat(expected[1:2], 3, axis=0))


def test_non_utf8_names_are_escaped_readably():
    assert display_name("caf\udce9.png") == "caf\\xe9.png"
    assert display_name("café.png") == "café.png"


@pytest.mark.slow
# ------------------------------------------------------------------------------------------- acceptance
def test_a_run_over_hostile_files_scores_the_good_and_names_the_bad(tmp_path):
    """The issue's acceptance: exit 0, no traceback, every good image scored, every bad one named in the
    leaderboard's skipped inputs, peak memory under 3 GB (measured on the real process)."""
    good, bad = hostile_folder(tmp_path / "data")
    suite = _suite_file(tmp_path, f"""
        name = "hostile"
        seeds = [0]
        [[task]]
        name = "denoise"
        datasets = {{ clean = {{ path = "{tmp_path / 'data'}" }} }}
        image_size = 32
        methods = [{{ name = "gaussian-filter" }}]
        {CHEAP_METRICS}
    """)
    code = ("import resource, runpy, sys; sys.argv = ['texbench'] + sys.argv[1:]\n"
            "try:\n    runpy.run_module('texbench', run_name='__main__')\n"
            "finally:\n    print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code, "run", "--suite", str(suite), "--out", str(tmp_path / "run"),
                           "--quiet"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    peak_kb = int(proc.stderr.rsplit("MAXRSS_KB", 1)[1].split()[0])
    assert peak_kb < 3 * 1024 * 1024, f"peak RSS {peak_kb / 1024:.0f} MB"
    with Store(tmp_path / "run", readonly=True) as store:
        jobs = store.jobs_frame()
        assert sorted(jobs["item"]) == sorted(good)
        assert set(jobs["status"]) == {"ok"}
        assert len(store.scores_frame().dropna(subset=["value"])) == len(good)
    md = (tmp_path / "run" / "leaderboard.md").read_text()
    skipped = md.split("## Skipped inputs", 1)[1]
    for name in bad:
        assert f"/ {name}:" in skipped, name
    assert "64000000" in skipped and "smaller than the 8x8" in skipped


# ----------------------------------------------------------------------------------- suite validation
@pytest.mark.parametrize("line,words", [
    ('image_size = "big"', "image_size must be a positive integer"),
    ("image_size = -64", "image_size must be a positive integer"),
    ("image_size = 0", "image_size must be a positive integer"),
    ("image_size = 100000", "up to 8192"),
    ('limit = "all"', "limit must be a positive integer"),
    ('seeds = "zero"', "seeds must be a non-empty list"),
    ("seeds = [9223372036854775808]", "seeds must be a non-empty list of integers in [0, 9223372036854775807]"),
    ("seeds = [-1]", "seeds must be"),
    ('methods = "gaussian-filter"', "methods must be a list"),
    ('metrics = [{ metric = "psnrr", ref = "clean" }]', "unknown metric 'psnrr'"),
    ('metrics = [{ metric = "psnr", ref = "cleen" }]', "ref 'cleen'"),
    ('set_metrics = [{ metric = "fid", ref = "seeds" }]', "ref 'seeds'"),
    ('params = "x"', "params must be a table"),
])
def test_suite_values_are_checked_when_the_suite_loads(tmp_path, line, words):
    methods = "" if line.startswith("methods") else 'methods = [{ name = "gaussian-filter" }]'
    p = _suite_file(tmp_path, f"""
        [[task]]
        name = "denoise"
        datasets = {{ clean = "builtin-clean" }}
        {methods}
        {line}
    """, name="quick.toml")
    with pytest.raises(SuiteError) as e:
        load_suite(str(p))
    msg = str(e.value)
    assert msg.startswith("quick.toml: task 1 (denoise): ") and words in msg and "\n" not in msg, msg


def test_top_level_values_are_checked(tmp_path):
    p = _suite_file(tmp_path, """
        seeds = [0]
        max_pixels = "lots"
        [[task]]
        name = "denoise"
        datasets = { clean = "builtin-clean" }
        methods = ["gaussian-filter"]
    """)
    with pytest.raises(SuiteError, match=r"^s.toml: max_pixels must be a positive integer, got 'lots'$"):
        load_suite(str(p))


# ------------------------------------------------------------------------------- no silent wrong numbers
def _denoise_suite(tmp_path: Path, data: Path, methods: str, extra: str = "") -> Path:
    return _suite_file(tmp_path, f"""
        name = "t"
        seeds = [0]
        [[task]]
        name = "denoise"
        datasets = {{ clean = {{ path = "{data}" }} }}
        methods = [{methods}]
        {CHEAP_METRICS}
        {extra}
    """)


def _data(folder: Path, n: int = 2) -> Path:
    folder.mkdir()
    for i in range(n):
        _good(folder / f"im{i}.png", size=32, seed=i)
    return folder


def test_edited_parameters_supersede_older_jobs_instead_of_mixing(tmp_path):
    data = _data(tmp_path / "data")
    out = tmp_path / "run"
    run_suite(load_suite(str(_denoise_suite(tmp_path, data, '{ name = "gaussian-filter", label = "g" }'))), out,
              progress=False)
    edited = '{ name = "gaussian-filter", label = "g", params = { sigma_px = 0.5 } }'
    run_suite(load_suite(str(_denoise_suite(tmp_path, data, edited))), out, progress=False)
    with Store(out, readonly=True) as store:
        assert len(store.jobs_frame()) == 2 and store.superseded_count() == 2
        assert len(store.scores_frame()) == 2
    import pandas as pd

    board = pd.read_csv(out / "leaderboard.csv")
    assert board["n"].tolist() == [2] and board["psnr n"].tolist() == [2]
    md = (out / "leaderboard.md").read_text()
    assert "superseded: 2 older jobs" in md and "0/2" in md


def test_a_plugin_shadowing_a_builtin_needs_replaces(tmp_path, monkeypatch):
    registry.synthesizers.names()  # scan the entry points first, then isolate the registry
    monkeypatch.setattr(registry.synthesizers, "_entries", dict(registry.synthesizers._entries))
    plugin = tmp_path / "shadow.py"
    plugin.write_text(textwrap.dedent("""
        from texbench.base import Synthesizer

        class Impostor(Synthesizer):
            name = "gaussian-filter"
            tasks = ("denoise",)

            def run(self, task_input, *, seed, device):
                return task_input.image
    """))
    registry.load_plugin_file(plugin)
    data = _data(tmp_path / "data", 1)
    with pytest.raises(SuiteError, match="shadows the one of the same name.*replaces = true"):
        expand(load_suite(str(_denoise_suite(tmp_path, data, '{ name = "gaussian-filter" }'))))
    jobs = expand(load_suite(str(_denoise_suite(tmp_path, data, '{ name = "gaussian-filter", replaces = true }'))))
    assert len(jobs) == 1
    registry.load_plugin_file(plugin)  # the same file loaded again shadows nothing new
    assert "shadow.py" in registry.synthesizers.shadowed("gaussian-filter")


def test_a_plugin_shadowing_a_builtin_metric_needs_replaces(tmp_path, monkeypatch):
    registry.metrics.names()
    monkeypatch.setattr(registry.metrics, "_entries", dict(registry.metrics._entries))
    plugin = tmp_path / "shadow_metric.py"
    plugin.write_text(textwrap.dedent("""
        import torch
        from texbench.base import Metric

        class FakePSNR(Metric):
            name = "psnr"
            kind = "paired"
            higher_is_better = True

            def __call__(self, x, y):
                return torch.zeros(x.shape[0])
    """))
    registry.load_plugin_file(plugin)
    data = _data(tmp_path / "data", 1)
    with pytest.raises(SuiteError, match="metric 'psnr' from .*shadow_metric.py shadows.*replaces = true"):
        expand(load_suite(str(_denoise_suite(tmp_path, data, '"gaussian-filter"'))))
    suite = _denoise_suite(tmp_path, data, '"gaussian-filter"').read_text().replace(
        'ref = "clean" }', 'ref = "clean", replaces = true }')
    (tmp_path / "s.toml").write_text(suite)
    assert len(expand(load_suite(str(tmp_path / "s.toml")))) == 1


def _style_suite(tmp_path: Path, content: Path, style: Path, extra: str = "") -> Path:
    return _suite_file(tmp_path, f"""
        [[task]]
        name = "style"
        datasets = {{ content = {{ path = "{content}" }}, style = {{ path = "{style}" }} }}
        pairs = "zip"
        methods = ["reinhard"]
        metrics = [{{ metric = "ssim", ref = "content" }}]
        set_metrics = []
        {extra}
    """)


def test_zip_pairs_by_position_and_a_skipped_input_removes_its_pair_only(tmp_path):
    content, style = tmp_path / "c", tmp_path / "s"
    content.mkdir(), style.mkdir()
    for i, (c, s) in enumerate(zip("abc", "xyz")):
        _good(content / f"{i}_{c}.png", size=32, seed=i)
        _good(style / f"{i}_{s}.png", size=32, seed=10 + i)
    (content / "1_b.png").write_bytes(b"broken")
    bad = []
    jobs = expand(load_suite(str(_style_suite(tmp_path, content, style))),
                  on_bad_input=lambda *a: bad.append(a))
    assert [j.item for j in jobs] == ["0_a+0_x", "2_c+2_z"]
    assert [b[2] for b in bad] == ["1_b"]
    _good(style / "3_w.png", size=32, seed=20)
    with pytest.raises(SuiteError, match="equal length, got 3 content images .* and 4 style images"):
        expand(load_suite(str(_style_suite(tmp_path, content, style))), on_bad_input=lambda *a: None)


def test_size_is_checked_on_the_original_before_image_size(tmp_path):
    data = _data(tmp_path / "data", 1)
    Image.new("RGB", (1, 1)).save(data / "dot.png")
    bad = []
    jobs = expand(load_suite(str(_denoise_suite(tmp_path, data, '"gaussian-filter"', "image_size = 32"))),
                  on_bad_input=lambda *a: bad.append(a))
    assert [j.item for j in jobs] == ["im0"]
    assert bad[0][2] == "dot" and "1x1" in bad[0][3]


def test_two_files_with_one_stem_are_an_error_naming_both(tmp_path):
    data = _data(tmp_path / "data", 1)
    Image.new("RGB", (32, 32)).save(data / "im0.jpg")
    with pytest.raises(ValueError, match="im0.jpg and im0.png|im0.png and im0.jpg"):
        expand(load_suite(str(_denoise_suite(tmp_path, data, '"gaussian-filter"'))))


def test_a_label_with_a_pipe_keeps_the_markdown_table_whole(tmp_path):
    data = _data(tmp_path / "data", 1)
    out = tmp_path / "run"
    run_suite(load_suite(str(_denoise_suite(tmp_path, data, '{ name = "gaussian-filter", label = "a|b <i>" }'))),
              out, progress=False)
    md = (out / "leaderboard.md").read_text()
    row = next(line for line in md.splitlines() if "a\\|b" in line)
    header = next(line for line in md.splitlines() if line.startswith("| label"))
    assert row.count(" | ") == header.count(" | ") and "\\<i\\>" in row


# ---------------------------------------------------------------------------- store and file system
def test_a_corrupt_store_is_one_line_saying_what_to_do(tmp_path):
    data = _data(tmp_path / "data", 1)
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="is not a valid database.*move it aside or use another --out"):
        Store(out)
    with pytest.raises(StoreError, match="is not a valid database"):
        Store(out, readonly=True)
    res = CliRunner().invoke(main, ["report", str(out)])
    assert res.exit_code == 1 and res.exc_info[0] is SystemExit and "move it aside" in res.output
    res = CliRunner().invoke(main, ["run", "--suite", str(_denoise_suite(tmp_path, data, '"gaussian-filter"')),
                                    "--out", str(out), "--quiet"])
    assert res.exit_code == 1 and res.exc_info[0] is SystemExit
    assert "results.sqlite is not a valid database" in res.output and "move it aside" in res.output


def test_a_truncated_store_is_one_line(tmp_path):
    data = _data(tmp_path / "data", 2)
    suite = str(_denoise_suite(tmp_path, data, '"gaussian-filter"'))
    out = tmp_path / "run"
    run_suite(load_suite(suite), out, progress=False)
    db = out / "results.sqlite"
    with sqlite3.connect(db) as conn:  # fold the WAL in, so the file alone is the database
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.write_bytes(db.read_bytes()[: 3 * 4096])
    for args in (["run", "--suite", suite, "--out", str(out), "--quiet", "--rerun"], ["report", str(out)]):
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 1 and res.exc_info[0] is SystemExit, (args, res.output)
        assert "move it aside or use another --out" in res.output and "Traceback" not in res.output


def test_report_reads_the_store_without_writing(tmp_path, monkeypatch):
    data = _data(tmp_path / "data", 1)
    out = tmp_path / "run"
    run_suite(load_suite(str(_denoise_suite(tmp_path, data, '"gaussian-filter"'))), out, progress=False)
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    for f in ("results.sqlite-wal", "results.sqlite-shm"):
        (copy / f).unlink(missing_ok=True)
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    for p in [copy, *copy.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    # what a read-only medium looks like (root ignores permission bits, so say it)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if mode == os.W_OK else real_access(p, mode))
    try:
        with Store(copy, readonly=True) as store:
            assert len(store.jobs_frame()) == 1
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                store.set_meta({"x": 1})
        res = CliRunner().invoke(main, ["report", str(copy)])
        assert res.exit_code == 0, res.output
        assert "gaussian-filter" in res.output and "read-only" in res.output
        after = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
        assert after == before  # nothing written, not even SQLite's -shm/-wal
    finally:
        for p in [copy, *copy.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)


def test_immutable_fallback_opens_a_store_whose_folder_cannot_hold_sqlite_files(tmp_path, monkeypatch):
    data = _data(tmp_path / "data", 1)
    out = tmp_path / "run"
    run_suite(load_suite(str(_denoise_suite(tmp_path, data, '"gaussian-filter"'))), out, progress=False)
    real_connect = sqlite3.connect
    uris = []

    def connect(database, *args, **kwargs):  # mode=ro of a WAL database fails where -shm cannot be made
        uris.append(database)
        if "mode=ro" in str(database):
            return _FailingConnection()
        return real_connect(database, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connect)
    with Store(out, readonly=True) as store:
        assert len(store.jobs_frame()) == 1
    assert "immutable=1" in uris[-1]


class _FailingConnection:
    def execute(self, *a):
        raise sqlite3.OperationalError("unable to open database file")

    def close(self):
        pass


@pytest.mark.parametrize("exc,words", [
    (OSError(errno.ENOSPC, "No space left on device", "/runs/x/images/a.png"), "/runs/x/images/a.png: no space left"),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/cd/run"), "/mnt/cd/run: on a read-only file system"),
    (OSError(errno.ENOTDIR, "Not a directory", "/tmp/f.txt/out.png"), "a part of this path is a file"),
    (OSError(errno.EACCES, "Permission denied", "caf\udce9"), "caf\\xe9: permission denied"),
    (sqlite3.OperationalError("database or disk is full"), "free some space or use another --out"),
    (sqlite3.OperationalError("attempt to write a readonly database"), "read-only; use another --out"),
])
def test_file_system_faults_are_one_line_user_errors(exc, words):
    err = user_error(exc)
    assert err is not None and words in err.message and "\n" not in err.message


def test_run_out_under_a_file_is_one_line(tmp_path):
    data = _data(tmp_path / "data", 1)
    (tmp_path / "afile").write_text("x")
    res = CliRunner().invoke(main, ["run", "--suite", str(_denoise_suite(tmp_path, data, '"gaussian-filter"')),
                                    "--out", str(tmp_path / "afile" / "run"), "--quiet"])
    assert res.exit_code == 1 and res.exc_info[0] is SystemExit, res.output
    assert "afile" in res.output and "is a file" in res.output


# ------------------------------------------------------------------------------------------ score, synth
def test_score_scores_the_readable_pairs_and_exits_non_zero(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    for i in range(3):
        _good(a / f"p{i}.png", size=32, seed=i)
        _good(b / f"p{i}.png", size=32, seed=i + 5)
    (b / "p1.png").write_bytes(b"broken")
    res = CliRunner().invoke(main, ["score", "psnr", str(a), str(b)])
    assert res.exit_code == 1 and res.exc_info[0] is SystemExit
    lines = res.output.splitlines()
    assert any(line.startswith("p0 ") and "ERROR" not in line for line in lines)
    assert any(line.startswith("p1 ") and "ERROR" in line for line in lines)
    assert "1 of 3 pairs could not be scored" in res.output
    (tmp_path / "c").mkdir()
    _good(tmp_path / "c" / "other.png", size=32)
    res = CliRunner().invoke(main, ["score", "psnr", str(a), str(tmp_path / "c")])
    assert res.exit_code == 1 and "no pair of images" in res.output


def test_score_respects_the_pixel_budget(tmp_path):
    bomb = bomb_png(tmp_path / "bomb.png")
    _good(tmp_path / "g.png", size=32)
    res = CliRunner().invoke(main, ["score", "psnr", str(tmp_path / "g.png"), str(bomb)])
    assert res.exit_code == 1 and res.exc_info[0] is SystemExit and "pixel budget" in res.output


def test_synth_writes_the_format_its_extension_names(tmp_path):
    inp = _good(tmp_path / "in.png", size=32)
    for name, fmt in (("out.jpg", "JPEG"), ("out.png", "PNG"), ("out.tif", "TIFF")):
        res = CliRunner().invoke(main, ["synth", "gaussian-filter", "--task", "denoise", "--input", str(inp),
                                        "-o", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
        with Image.open(tmp_path / name) as im:
            assert im.format == fmt
    res = CliRunner().invoke(main, ["synth", "gaussian-filter", "--task", "denoise", "--input", str(inp),
                                    "-o", str(tmp_path / "out.xyz")])
    assert res.exit_code == 2 and "-o/--output" in res.output and "'.xyz'" in res.output
    (tmp_path / "f").write_text("x")
    res = CliRunner().invoke(main, ["synth", "gaussian-filter", "--task", "denoise", "--input", str(inp),
                                    "-o", str(tmp_path / "f" / "out.png")])
    assert res.exit_code == 2 and "is a file, not a folder" in res.output


@pytest.mark.parametrize("size", ["0", "-5", "3"])
def test_synth_size_is_range_checked_naming_the_option(tmp_path, size):
    inp = _good(tmp_path / "in.png", size=32)
    res = CliRunner().invoke(main, ["synth", "random-phase", "--task", "texture", "--input", str(inp),
                                    "--size", size, "-o", str(tmp_path / "o.png")])
    assert res.exit_code == 2 and "--size" in res.output and not (tmp_path / "o.png").exists()


def test_synth_refuses_a_bomb_with_one_line(tmp_path):
    bomb = bomb_png(tmp_path / "bomb.png")
    res = CliRunner().invoke(main, ["synth", "random-phase", "--task", "texture", "--input", str(bomb),
                                    "-o", str(tmp_path / "o.png")])
    assert res.exit_code == 1 and res.exc_info[0] is SystemExit
    assert "bomb.png" in res.output and "pixel budget" in res.output
    res = CliRunner().invoke(main, ["synth", "random-phase", "--task", "texture", "--input", str(bomb),
                                    "--max-pixels", "0", "-o", str(tmp_path / "o.png")])
    assert res.exit_code == 2 and "--max-pixels" in res.output


def test_run_max_pixels_option_raises_the_budget(tmp_path):
    data = _data(tmp_path / "data", 1)
    Image.new("RGB", (64, 64)).save(data / "big.png")
    suite = _denoise_suite(tmp_path, data, '"gaussian-filter"', "").read_text().replace(
        'name = "t"', 'name = "t"\nmax_pixels = 2000')
    (tmp_path / "s.toml").write_text(suite)
    s = load_suite(str(tmp_path / "s.toml"))
    assert s.max_pixels == 2000
    summary = run_suite(s, tmp_path / "r1", progress=False)
    assert (summary.total, summary.bad_inputs) == (1, 1)
    summary = run_suite(s, tmp_path / "r2", progress=False, max_pixels=5000)
    assert (summary.total, summary.bad_inputs) == (2, 0)
