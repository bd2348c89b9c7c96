"""Standard sets: fetched with checksums (from a folder or a URL), loaded by name, clear when missing."""

from __future__ import annotations

import hashlib

import pytest
from click.testing import CliRunner

from texbench import registry
from texbench.cli import main
from texbench.datasets import standard
from texbench.datasets.standard import DatasetFetchError, StandardSet, fetch_set, standard_sets


@pytest.fixture
def ds_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXBENCH_DATASETS", str(tmp_path / "ds"))
    return tmp_path / "ds"


def test_manifest_is_complete():
    sets = standard_sets()
    assert {"kodak24", "cbsd68", "set5", "set14", "dip-clean"} <= set(sets)
    assert [len(sets[n].files) for n in ("kodak24", "cbsd68", "set5", "set14")] == [24, 68, 5, 14]
    for s in sets.values():
        assert all(len(sha) == 64 and int(sha, 16) >= 0 for _, sha, _ in s.files)
        assert all(u is None or u.startswith("https://") for _, _, u in s.files)
    for n in sets:
        assert registry.datasets.get(n).name == n


def test_missing_set_says_how_to_fetch(ds_home):
    with pytest.raises(ValueError, match=r"texbench datasets fetch set5"):
        registry.datasets.get("set5")().items()


def test_fetch_from_folder_verifies_and_loads(ds_home, shared_data, tmp_path):
    # a copy with one file altered: that file is refused with both checksums, the others are kept
    src = tmp_path / "copy"
    src.mkdir()
    for f in (shared_data / "set5").iterdir():
        (src / "nested").mkdir(exist_ok=True)
        (src / "nested" / f.name).write_bytes(f.read_bytes())
    bad = src / "nested" / "bird_GT.bmp"
    bad.write_bytes(bad.read_bytes()[:-1] + b"\x00")
    with pytest.raises(DatasetFetchError) as err:
        fetch_set("set5", from_dir=src, progress=False)
    assert "bird_GT.bmp" in str(err.value) and hashlib.sha256(bad.read_bytes()).hexdigest() in str(err.value)
    assert sorted(p.name for p in (ds_home / "set5").iterdir()) == ["baby_GT.bmp", "butterfly_GT.bmp",
                                                                     "head_GT.bmp", "woman_GT.bmp"]
    with pytest.raises(ValueError, match="1 of 5 files"):
        registry.datasets.get("set5")().items()
    # the CLI with the original folder completes the set; the suite loader then serves all five
    res = CliRunner().invoke(main, ["datasets", "fetch", "set5", "--from", str(shared_data / "set5"), "--quiet"])
    assert res.exit_code == 0, res.output
    items = registry.datasets.get("set5")().items()
    assert [i.id for i in items] == ["baby_GT", "bird_GT", "butterfly_GT", "head_GT", "woman_GT"]
    assert items[0].load().shape == (3, 512, 512)
    assert "ok" in CliRunner().invoke(main, ["datasets", "list"]).output


def test_download_is_verified_and_atomic(ds_home, tmp_path, monkeypatch):
    good, wrong = tmp_path / "a.png", tmp_path / "b.png"
    good.write_bytes(b"good bytes")
    wrong.write_bytes(b"tampered")
    fake = StandardSet("toy", "toy set", ("clean",), "none", "here", "here", (
        ("a.png", hashlib.sha256(b"good bytes").hexdigest(), good.as_uri()),
        ("b.png", hashlib.sha256(b"original").hexdigest(), wrong.as_uri()),
        ("c.png", "0" * 64, (tmp_path / "absent.png").as_uri()),
    ))
    monkeypatch.setattr(standard, "standard_sets", lambda: {"toy": fake})
    with pytest.raises(DatasetFetchError) as err:
        fetch_set("toy", progress=False)
    msg = str(err.value)
    assert "2 of 3 files" in msg and "b.png" in msg and "c.png" in msg and "--from DIR" in msg
    assert [p.name for p in (ds_home / "toy").iterdir()] == ["a.png"]  # nothing half-written


def test_run_with_a_missing_set_creates_nothing(ds_home, tmp_path):
    res = CliRunner().invoke(main, ["run", "--suite", "dip-denoise", "--out", str(tmp_path / "run"), "--quiet"])
    assert res.exit_code != 0 and "texbench datasets fetch kodak24" in res.output
    assert not (tmp_path / "run").exists()


def test_fetch_from_a_clone_of_the_source_repository(ds_home, shared_data, tmp_path):
    # DIP's repository names its files data/denoising/F16_GT.png ...; texbench's copies are prefixed
    clone = tmp_path / "deep-image-prior" / "data"
    for local, sub in [("denoising_F16_GT.png", "denoising/F16_GT.png"), ("denoising_snail.jpg", "denoising/snail.jpg"),
                       ("sr_zebra_GT.png", "sr/zebra_GT.png"), ("restoration_kate.png", "restoration/kate.png")]:
        (clone / sub).parent.mkdir(parents=True, exist_ok=True)
        (clone / sub).write_bytes((shared_data / "dip" / local).read_bytes())
    fetch_set("dip-clean", from_dir=tmp_path / "deep-image-prior", progress=False)
    assert [i.id for i in registry.datasets.get("dip-clean")().items()] == [
        "denoising_F16_GT", "denoising_snail", "sr_zebra_GT", "restoration_kate"]
