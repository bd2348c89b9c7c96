"""Pretrained weights: per-network fetch and verify, prefix digests, verified atomic downloads.

Fake specs and a private TEXBENCH_HOME/TORCH_HOME: nothing here touches ~/.cache/texbench, and nothing
downloads (``texbench.files.download`` is replaced by a stand-in that serves bytes from a dict).
"""

from __future__ import annotations

import hashlib
import os
import stat
import urllib.error
from pathlib import Path

import pytest
from click.testing import CliRunner

from texbench import files, weights
from texbench.cli import main
from texbench.weights import UrlSource, WeightSpec

ALEX_A, ALEX_B, SQUEEZE, LIN = b"alexnet, torchvision layout", b"alexnet, flax layout", b"squeezenet", b"lin"


def _spec(name: str, data: bytes, *, network: str = "", required: bool = True, prefix: bool = False) -> WeightSpec:
    digest = hashlib.sha256(data).hexdigest()
    return WeightSpec(name=name, filename=f"{name}.bin", sha256=digest[:8] if prefix else digest,
                      sources=(UrlSource(f"https://weights.invalid/{name}.bin"),), network=network, required=required)


SPECS = {
    "alex-torchvision": _spec("alex-torchvision", ALEX_A, network="alex"),
    "alex-flax": _spec("alex-flax", ALEX_B, network="alex"),
    "squeeze-torchvision": _spec("squeeze-torchvision", SQUEEZE, network="squeeze", required=False, prefix=True),
    "lin": _spec("lin", LIN),
}


@pytest.fixture
def world(tmp_path, monkeypatch):
    """The fake specs, an empty private cache, and a fake network where only the URLs in ``served`` answer."""
    monkeypatch.setenv("TEXBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for spec in SPECS.values():
        monkeypatch.delenv("TEXBENCH_WEIGHTS_" + spec.name.upper().replace("-", "_").replace(".", "_"), raising=False)
    monkeypatch.setattr(weights, "all_specs", lambda: dict(SPECS))
    served: dict[str, bytes] = {}

    def download(url, dest, *, sha256=None, size=0, timeout=30.0, progress=True):
        if url not in served:
            raise urllib.error.URLError(f"{url} is unreachable")
        with files.atomic_write(dest, sha256=sha256) as fh:
            fh.write(served[url])
        return Path(dest)

    monkeypatch.setattr(files, "download", download)

    class World:
        cache = tmp_path / "home" / "weights"

        @staticmethod
        def serve(name: str, data: bytes) -> None:
            served[SPECS[name].sources[0].url] = data

        @staticmethod
        def put(name: str, data: bytes) -> Path:
            World.cache.mkdir(parents=True, exist_ok=True)
            path = World.cache / SPECS[name].filename
            path.write_bytes(data)
            return path

    return World


def _texbench(*args: str):
    return CliRunner().invoke(main, list(args))


# ------------------------------------------------------------------------------------------------- verify
def test_verify_accepts_a_file_that_matches_a_digest_prefix(world):
    """torchvision's files carry an 8-digit digest prefix (vgg19-imagenet): a correct file is ok, not WRONG."""
    world.put("squeeze-torchvision", SQUEEZE)
    res = _texbench("weights", "verify", "squeeze-torchvision")
    assert res.exit_code == 0, res.output
    assert "squeeze: ok" in res.stdout and "WRONG" not in res.stdout


def test_verify_is_per_network(world):
    """One verified copy serves a network; a missing optional network is reported, not an error."""
    world.put("alex-flax", ALEX_B)
    world.put("lin", LIN)
    res = _texbench("weights", "verify")
    assert res.exit_code == 0, res.output
    assert "alex: ok" in res.stdout and "alex-flax" in res.stdout
    assert "squeeze (optional): missing" in res.stdout


def test_verify_fails_on_a_corrupt_copy_or_a_required_network_without_a_file(world):
    world.put("alex-flax", ALEX_B)
    world.put("lin", LIN)
    bad = world.put("alex-torchvision", b"truncated")  # another copy serves the network, but this one is corrupt
    res = _texbench("weights", "verify")
    assert res.exit_code == 1
    assert f"WRONG sha256 at {bad}" in res.stdout and "alex-torchvision corrupt" in res.stderr
    bad.unlink()
    (world.cache / "lin.bin").unlink()
    res = _texbench("weights", "verify")
    assert res.exit_code == 1 and res.stderr == "Error: verify failed: lin missing\n"


# -------------------------------------------------------------------------------------------------- fetch
def test_fetch_succeeds_when_an_unreachable_source_has_a_present_equivalent(world):
    """The README's first command: alex-torchvision's host is unreachable, but alex-flax is in the cache."""
    world.put("alex-flax", ALEX_B)
    world.serve("lin", LIN)
    res = _texbench("weights", "fetch")
    assert res.exit_code == 0, res.output
    assert f"alex: {world.cache / 'alex-flax.bin'} (alex-flax)" in res.stdout
    assert f"lin: {world.cache / 'lin.bin'}" in res.stdout
    assert "squeeze (optional): unavailable" in res.stdout
    assert not (world.cache / "alex-torchvision.bin").exists()


def test_fetch_takes_the_first_reachable_source_of_each_network(world):
    world.serve("alex-flax", ALEX_B)
    world.serve("lin", LIN)
    old = os.umask(0o022)
    try:
        res = _texbench("weights", "fetch")
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    got = world.cache / "alex-flax.bin"
    assert got.read_bytes() == ALEX_B and stat.S_IMODE(got.stat().st_mode) == 0o644
    assert sorted(p.name for p in world.cache.iterdir()) == ["alex-flax.bin", "lin.bin"]  # no temporary files


def test_fetch_fails_only_for_a_required_network_without_any_file(world):
    world.serve("alex-flax", b"tampered")  # reachable, but the wrong bytes: refused
    res = _texbench("weights", "fetch")
    assert res.exit_code == 1
    assert res.stderr.strip().splitlines()[-1] == "Error: no file for the required network(s): alex, lin"
    assert "alex: unavailable" in res.stdout and "sha256" in res.stderr
    assert not world.cache.exists() or not any(world.cache.iterdir())


def test_a_named_file_is_required_even_when_an_equivalent_is_present(world):
    world.put("alex-flax", ALEX_B)
    res = _texbench("weights", "fetch", "alex-torchvision")
    assert res.exit_code == 1 and "no file for the required network(s): alex" in res.stderr
    res = _texbench("weights", "fetch", "alex")  # the network by name: any copy serves it
    assert res.exit_code == 0 and "alex-flax" in res.stdout


def test_fetch_network_prefers_a_present_copy_unless_forced(world):
    specs = [SPECS["alex-torchvision"], SPECS["alex-flax"]]
    world.put("alex-flax", ALEX_B)
    world.serve("alex-torchvision", ALEX_A)
    assert weights.fetch_network(specs, quiet=True) == (specs[1], world.cache / "alex-flax.bin")
    assert weights.fetch_network(specs, quiet=True, force=True) == (specs[0], world.cache / "alex-torchvision.bin")


# ------------------------------------------------------------------------------------ files: the one owner
def test_download_keeps_only_verified_bytes(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload")
    dest = tmp_path / "out" / "w.bin"
    digest = hashlib.sha256(b"payload").hexdigest()
    with pytest.raises(files.ChecksumError) as err:
        files.download(src.as_uri(), dest, sha256="0" * 64, progress=False)
    assert err.value.actual == digest and not any(dest.parent.iterdir())  # nothing kept, no temporary file
    assert files.download(src.as_uri(), dest, sha256=digest[:8], progress=False) == dest
    assert dest.read_bytes() == b"payload"
    with pytest.raises(OSError):
        files.download((tmp_path / "absent.bin").as_uri(), dest, sha256=digest, progress=False)
    assert dest.read_bytes() == b"payload" and sorted(p.name for p in dest.parent.iterdir()) == ["w.bin"]


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    path = tmp_path / "f.bin"
    files.atomic_write_bytes(path, b"old")
    with pytest.raises(RuntimeError), files.atomic_write(path) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("killed")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_public_helpers_stay_importable_where_plugins_found_them():
    from texbench.imageio import atomic_write_bytes
    from texbench.weights import sha256_file

    assert atomic_write_bytes is files.atomic_write_bytes and sha256_file is files.sha256_file


@pytest.mark.parametrize("build", ["adain", "wct", "johnson"])
def test_shared_networks_are_keyed_by_the_weights_settings(build, tmp_path, monkeypatch):
    """A network memoised under one texbench home (random weights there, say) is never served under
    another: the process-wide caches of the AdaIN networks, WCT's encoders and Johnson's loss network are
    keyed by texbench.weights.resolution_context, as LPIPS' are."""

    def get():
        if build == "adain":
            from texbench.nets.adain import adain_networks

            return adain_networks("cpu")[0]
        if build == "wct":
            from texbench.synthesizers.wct import encoder

            return encoder("relu1_1", "cpu")
        from texbench.synthesizers.johnson import loss_network

        return loss_network(("relu1_2",), "cpu")

    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    monkeypatch.setenv("TEXBENCH_HOME", str(tmp_path / "a"))
    first = get()
    assert get() is first  # memoised within one setting
    monkeypatch.setenv("TEXBENCH_HOME", str(tmp_path / "b"))
    assert get() is not first
