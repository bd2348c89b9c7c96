"""The ``standard`` suite: every registered method on the standard sets, its size known before it runs."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from texbench import registry
from texbench.cli import main
from texbench.datasets.standard import fetch_set, missing_files, standard_sets
from texbench.suite import load_suite

#: methods being added by other work in progress, added to the suite when they land


@pytest.fixture
def ds_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXBENCH_DATASETS", str(tmp_path / "ds"))
    return tmp_path / "ds"


def _plan(args=()):
    r = CliRunner().invoke(main, ["run", "--suite", "standard", "--plan", "--json", *args])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_new_sets_are_commit_pinned_and_complete():
    sets = standard_sets()
    assert [len(sets[n].files) for n in ("texture-exemplars", "style-paintings", "style-content")] == [9, 15, 4]
    for n in ("texture-exemplars", "style-paintings", "style-content"):
        for _f, sha, url in sets[n].files:
            assert len(sha) == 64 and url.startswith("https://raw.githubusercontent.com/")
            commit = url.split("/")[5]
            assert len(commit) == 40 and int(commit, 16) >= 0, url
        assert registry.datasets.get(n).name == n


def test_every_registered_method_is_in_the_suite():
    suite = load_suite("standard")
    used = {(spec.task, m.name) for spec in suite.tasks for m in spec.methods}
    for name in registry.synthesizers.names():
        cls = registry.synthesizers.get(name)
        if not cls.__module__.startswith("texbench.synthesizers."):
            continue  # a test's plugin
        for task in cls.tasks:
            if task in {"texture", "style", "denoise", "sr4", "jpeg", "solid"}:
                assert (task, name) in used, f"{name} ({task}) missing from the standard suite"


def test_plan_lists_the_standard_sets_and_what_is_missing(ds_home):
    tasks = _plan()["tasks"]
    texture = sum(t["inputs"] for k, t in tasks.items() if k.startswith("texture[") and "seeds=" not in k)
    assert texture >= 15
    style = [t for k, t in tasks.items() if k.startswith("style[")]
    assert min(t["inputs"] for t in style) >= 15
    for ds in ("kodak24", "cbsd68"):
        for sigma in (15, 25, 50):
            assert f"denoise[{ds}; sigma={sigma}]" in tasks
    assert "sr4[set5]" in tasks and "sr4[set14]" in tasks and "jpeg[kodak24]" in tasks
    missing = {m for t in tasks.values() for m in t["missing"]}
    training = {m for m in missing if "(training images of" in m}
    assert training == {"cbsd68 (training images of johnson-sr[cpu])"}  # beside sr4's set5 and set14
    assert missing - training == {"kodak24", "cbsd68", "set5", "set14", "texture-exemplars", "style-paintings",
                                  "style-content"}
    # stochastic methods run several seeds
    assert tasks["texture[texture-exemplars; size=256]"]["seeds"] == 3
    assert tasks["denoise[kodak24; sigma=25; seeds=0,1,2]"]["seeds"] == 3


def test_with_the_test_data_fetched_nothing_is_missing(ds_home, shared_data):
    for name in ("kodak24", "cbsd68", "set5", "set14", "texture-exemplars", "style-paintings", "style-content"):
        fetch_set(name, from_dir=shared_data, progress=False)
        assert missing_files(name) == []
    tasks = _plan()["tasks"]
    assert all(t["missing"] == [] for t in tasks.values())
    assert tasks["texture[texture-exemplars; size=256]"]["inputs"] == 9
    assert tasks["style[style-content+style-paintings]"]["inputs"] == 60
