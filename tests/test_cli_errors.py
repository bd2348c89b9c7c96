"""One error convention for every command: a user's mistake is one ``Error:`` line and a non-zero exit,
never a traceback; texbench's own bugs keep their traceback. Third-party commands join through the
entry-point group ``texbench.cli`` and follow the same convention."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from texbench.cli import main
from texbench.cli.common import Command

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def files(tmp_path, monkeypatch):
    """An image, an empty folder and a plugin file that fails to import, in a private TEXBENCH_HOME."""
    monkeypatch.setenv("TEXBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TEXBENCH_DATASETS", str(tmp_path / "ds"))
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken.py").write_text("raise ImportError('broken on purpose')\n")
    return tmp_path


#: one user's mistake per command group: (arguments, words the message must hold)
MISTAKES = [
    (["run", "--suite", "no-such-suite"], "unknown suite 'no-such-suite'"),
    (["report", "@empty"], "no results.sqlite"),
    (["--plugin", "@broken.py", "list"], "broken on purpose"),
    (["synth", "no-such-method", "--task", "texture", "--input", "@a.png", "-o", "@out.png"], "unknown synthesizer"),
    (["synth", "random-phase", "--task", "texture", "--input", "@a.png", "--param", "nope=1", "-o", "@out.png"],
     "unknown parameter"),
    (["score", "no-such-metric", "@a.png", "@a.png"], "unknown metric"),
    (["weights", "verify", "no-such-weights"], "unknown weights"),
    (["datasets", "fetch", "no-such-set"], "unknown standard set"),
    (["lpips", "train", "@empty", "--out", "@run"], "no BAPPS 2afc data"),
    (["fid-stats", "@empty", "@out.npz", "--crop-size", "-1"], "parameter 'crop_size' must be >= 0"),  # ValueError of params
]


@pytest.mark.parametrize(("args", "words"), MISTAKES, ids=[" ".join(a[:2]) for a, _ in MISTAKES])
def test_a_users_mistake_is_one_error_line(files, args, words):
    argv = [str(files / a[1:]) if a.startswith("@") else a for a in args]
    res = CliRunner().invoke(main, argv)
    assert res.exit_code not in (0, None), res.output
    assert isinstance(res.exception, SystemExit), f"not handled as a user error: {res.exception!r}"
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and words in lines[0], res.stderr


def test_a_user_error_in_a_real_process_has_no_traceback(files):
    res = subprocess.run([sys.executable, "-m", "texbench", "score", "psnr", str(files / "a.png"), str(files / "empty")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "Error: A and B must both be files or both be folders" in res.stderr
    res = subprocess.run([sys.executable, "-m", "texbench", "weights", "verify", "no-such-weights"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and res.stderr.startswith("Error: unknown weights") and "Traceback" not in res.stderr


def test_texbench_bugs_keep_their_traceback():
    def buggy():
        return {}["a key texbench forgot"]

    res = CliRunner().invoke(Command("buggy", callback=buggy), [])
    assert isinstance(res.exception, KeyError), "a bug must not be disguised as a user's mistake"


PLUGIN_CLI = '''
import click

@click.command("hello")
@click.argument("name")
def hello(name):
    """A command added by an installed package."""
    if name == "nobody":
        raise ValueError("nobody is not a name")
    click.echo(f"hello {name}")
'''


def test_plugin_commands_come_from_the_entry_point_group(tmp_path):
    site = tmp_path / "site"
    (site / "tbcli").mkdir(parents=True)
    (site / "tbcli" / "__init__.py").write_text(PLUGIN_CLI)
    dist = site / "tbcli-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tbcli\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[texbench.cli]\nhello = tbcli:hello\nbroken = tbcli:nope\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}

    def texbench(*args):
        return subprocess.run([sys.executable, "-m", "texbench", *args], env=env, capture_output=True, text=True,
                              timeout=120)

    listed = texbench("--help")  # a broken plugin command is listed as such, and never breaks the help
    assert listed.returncode == 0 and "hello" in listed.stdout and "BROKEN" in listed.stdout, listed.stderr
    for builtin in ("lpips", "datasets", "fid-stats"):  # registered directly, not through the group
        assert builtin in listed.stdout
    assert texbench("hello", "world").stdout == "hello world\n"
    mistake = texbench("hello", "nobody")
    assert mistake.returncode == 1 and mistake.stderr == "Error: nobody is not a name\n"
    broken = texbench("broken", "--any", "arguments")
    assert broken.returncode == 1 and "plugin command 'broken'" in broken.stderr and "Traceback" not in broken.stderr


def test_builtin_commands_are_not_entry_points():
    from importlib import metadata

    names = {ep.name: ep.value for ep in metadata.entry_points(group="texbench.cli")}
    assert not any(v.startswith("texbench.") for v in names.values()), names
