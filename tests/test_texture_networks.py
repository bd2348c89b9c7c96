"""Texture Networks: the generator's shape rules, the training cache's keys, and that training lowers the
Gram loss (random-init VGG always; the real normalised VGG-19 when it is cached)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from conftest import require_weights

from texbench.nets.vgg19 import VGG19_NORMALISED
from texbench.ops.gram import gram_matrix
from texbench.synthesizers.texture_networks import (
    MultiScaleGenerator,
    TextureNetworks,
    TextureNetworksParams,
    build_generator,
    noise_pyramid,
    scale_sizes,
    texture_loss,
)
from texbench.tasks import TaskInput, get_task
from texbench.trained import trained_dir

CPU = torch.device("cpu")
TINY = dict(TextureNetworks.presets["tiny"])


def _smooth(h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, h // 8, w // 8, generator=g)
    return torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)[0].clamp(0, 1)


def _input(seed: int = 0, size: int = 56) -> TaskInput:
    t = get_task("texture")
    return t.build(
        {"exemplar": _smooth(48, 48, seed)}, item=f"e{seed}", params=t.params({"size": size})
    ).input


def _trained_files() -> list:
    d = trained_dir()
    return sorted(d.glob("*.pt")) if d.exists() else []


# ------------------------------------------------------------------------------------------ generator
def test_scale_sizes_halve_rounding_up():
    assert scale_sizes((64, 64), 5) == [(4, 4), (8, 8), (16, 16), (32, 32), (64, 64)]
    assert scale_sizes((57, 30), 3) == [(15, 8), (29, 15), (57, 30)]
    with pytest.raises(ValueError):
        scale_sizes((0, 4), 2)


@pytest.mark.parametrize("size", [(32, 32), (37, 50)])
def test_generator_output_size_and_widths(size):
    gen = MultiScaleGenerator(scales=4, channels=8).eval()
    z = noise_pyramid(size, 4, 3, batch=2, generator=torch.Generator().manual_seed(0))
    assert gen(z).shape == (2, 3, *size)
    # the k-th join block is channels*(k+1) wide: 16, 24, 32, and the RGB layer reads the last one
    assert [j[0].out_channels for j in gen.joins] == [16, 24, 32] and gen.to_rgb.in_channels == 32
    with pytest.raises(ValueError):
        gen(z[1:])


def test_paper_generator_is_small():
    # the paper: widths from 8 to 40 and about 65K parameters
    gen = build_generator(TextureNetworksParams())
    assert gen.to_rgb.in_channels == 40
    assert 60_000 < sum(p.numel() for p in gen.parameters()) < 80_000


def test_sampling_does_not_depend_on_the_batch():
    gen = build_generator(TextureNetworksParams(**{**TINY, "train_size": 32})).eval()
    z = noise_pyramid((24, 24), 3, 3, batch=3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        batched = gen(z)
        single = torch.cat([gen([t[i : i + 1] for t in z]) for i in range(3)])
    torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-6)


def test_circular_padding_makes_tileable_generators():
    # shifting every noise map by one coarse-scale cell shifts the output by as many pixels (circular
    # convolutions and nearest up-sampling commute with such shifts)
    gen = MultiScaleGenerator(scales=3, channels=4).eval()
    z = noise_pyramid((32, 32), 3, 3, batch=1, generator=torch.Generator().manual_seed(2))
    shifted = [torch.roll(t, shifts=(1 * t.shape[-2] // 8, 0), dims=(-2, -1)) for t in z]
    with torch.no_grad():
        a, b = gen(z), gen(shifted)
    torch.testing.assert_close(torch.roll(a, shifts=4, dims=-2), b, rtol=1e-5, atol=1e-5)


def test_output_scale_puts_the_untrained_output_at_the_mean_pixel():
    # output_scale=255: the RGB layer works on Caffe's 0-255 scale around the ImageNet mean, as the
    # authors' generator did; on the [0, 1] scale (output_scale=1) the same weights spread 255x wider
    z = noise_pyramid((16, 16), 3, 3, batch=2, generator=torch.Generator().manual_seed(3))
    mean = torch.tensor([123.68, 116.779, 103.939]).view(1, 3, 1, 1) / 255
    p = TextureNetworksParams(scales=3, train_size=16)
    with torch.no_grad():
        caffe = build_generator(p).train()(z) - mean
        unit = build_generator(dataclasses.replace(p, output_scale=1.0)).train()(z) - mean
    torch.testing.assert_close(unit, caffe * 255, rtol=1e-4, atol=1e-4)
    assert caffe.abs().max() < 0.05 < unit.abs().max()


def test_params_are_checked():
    with pytest.raises(ValueError, match="train_size"):
        TextureNetworksParams(scales=6, train_size=16)
    with pytest.raises(ValueError, match="style_layers"):
        TextureNetworksParams(style_layers=("relu9_1",))
    with pytest.raises(ValueError, match="lr"):
        TextureNetworksParams(lr=0)


# ------------------------------------------------------------------------------------- the synthesizer
def test_contract_seeds_and_training_cache(monkeypatch):
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    inp = _input(0, size=56)
    short = {"iterations": 3}  # this test is about the cache, not the quality: a short training
    m = TextureNetworks.from_config("tiny", short)
    m.prepare(inp, seed=0, device=CPU)
    info = m.pop_info()
    assert info["train_cached"] is False and info["train_seconds"] > 0
    assert len(info["loss_curve"]) == len(info["loss_curve_iterations"]) == short["iterations"]
    a = m.run(inp, seed=0, device=CPU)
    assert a.shape == (3, 56, 56) and a.dtype == torch.float32 and 56 != TINY["train_size"]
    assert a.min() >= 0 and a.max() <= 1 and a.std() > 0
    prov = m.provenance()
    assert prov["generator"] == f"trained:{info['train_key'][:16]}" and "vgg19" in prov

    # jobs with other seeds share the trained generator and differ only in the sampling noise
    b = m.run(inp, seed=1, device=CPU)
    assert not torch.equal(a, b)
    fresh = TextureNetworks.from_config("tiny", short)
    fresh.prepare(inp, seed=2, device=CPU)
    assert fresh.pop_info()["train_cached"] is True
    assert torch.equal(fresh.run(inp, seed=0, device=CPU), a)
    assert len(_trained_files()) == 1

    # run() without prepare() trains/loads by itself
    assert torch.equal(TextureNetworks.from_config("tiny", short).run(inp, seed=0, device=CPU), a)
    assert len(_trained_files()) == 1

    # another training seed, or another exemplar, trains anew
    other_seed = TextureNetworks.from_config("tiny", {**short, "train_seed": 1})
    other_seed.prepare(inp, seed=0, device=CPU)
    assert other_seed.pop_info()["train_cached"] is False
    assert not torch.equal(other_seed.run(inp, seed=0, device=CPU), a)
    m.prepare(_input(1, size=56), seed=0, device=CPU)
    assert m.pop_info()["train_cached"] is False
    assert len(_trained_files()) == 3
    record = json.loads(_trained_files()[0].with_suffix(".json").read_text())
    assert record["fields"]["method"] == "texture-networks" and "exemplar" in record["fields"]


def test_bad_inputs(monkeypatch):
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    m = TextureNetworks.from_config("tiny")
    with pytest.raises(ValueError, match="exemplar"):
        m.run(TaskInput("texture", "x", (32, 32)), seed=0, device=CPU)
    style = TaskInput("style", "x", (32, 32), content=torch.rand(3, 32, 32), style=torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match="tasks"):
        m.run(style, seed=0, device=CPU)
    assert not _trained_files()


def _loss_drop(m: TextureNetworks, inp: TaskInput) -> tuple[float, float]:
    """Gram loss of the untrained and of the trained generator on the same noise (the trained one as
    sampled: eval mode, clipped)."""
    p = m.params
    trained = m.generator(inp, device=CPU)
    net = m._net(CPU)
    with torch.no_grad():
        feats = net(inp.image[None])
        targets = [gram_matrix(feats[n]) for n in p.style_layers]
        z = noise_pyramid(
            (40, 40), p.scales, p.noise_channels, batch=4, generator=torch.Generator().manual_seed(9)
        )
        untrained = build_generator(p).train()  # no running statistics yet: batch statistics
        before = texture_loss(untrained(z), targets, net, layers=p.style_layers).mean().item()
        after = texture_loss(trained(z).clamp(0, 1), targets, net, layers=p.style_layers).mean().item()
    return before, after


def test_training_lowers_the_gram_loss_random_vgg(monkeypatch, texbench_home):
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")  # texbench_home: no weights, random init
    m = TextureNetworks.from_config("tiny")
    inp = _input(3, size=40)
    before, after = _loss_drop(m, inp)
    assert m.provenance()["vgg19"].startswith("random-init")
    assert after < 0.5 * before, (before, after)
    info = m.pop_info()
    assert info["train_loss_end"] < 0.5 * info["train_loss_start"]


@pytest.mark.weights
def test_training_lowers_the_gram_loss_real_vgg():
    require_weights(VGG19_NORMALISED)
    m = TextureNetworks.from_config("tiny")
    inp = _input(4, size=40)
    before, after = _loss_drop(m, inp)
    assert m.provenance()["vgg19"].startswith("vgg19-normalised@sha256:")
    assert after < 0.5 * before, (before, after)


def test_vgg_weights_are_part_of_the_training_key(monkeypatch, texbench_home):
    # a generator trained against random-init VGG features must never be served for the real network
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    m = TextureNetworks.from_config("tiny", {"iterations": 1})
    m.prepare(_input(0), seed=0, device=CPU)
    rec = json.loads(_trained_files()[0].with_suffix(".json").read_text())
    assert rec["fields"]["vgg19"].startswith("random-init")
