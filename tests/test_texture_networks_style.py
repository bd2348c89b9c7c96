"""Texture Networks' stylisation: the conditioned generator's inputs and output size, seeds, the training
cache (per style image, never on the test content), and that training lowers the objective on held-out
content crops (random-init VGG)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from texbench import registry
from texbench.synthesizers.texture_networks_style import (
    StylizationGenerator,
    TextureNetworksStyle,
    TextureNetworksStyleParams,
    build_stylization_generator,
    style_grams,
    stylization_inputs,
    stylization_objective,
)
from texbench.tasks import get_task
from texbench.trained import calibrate_batch_norm, trained_dir

CPU = torch.device("cpu")
TINY = dict(TextureNetworksStyle.presets["tiny"])


def _smooth(h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, max(h // 8, 2), max(w // 8, 2), generator=g)
    return F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)[0].clamp(0, 1)


def _input(content: torch.Tensor, style_seed: int = 2):
    t = get_task("style")
    return t.build(
        {"content": content, "style": _smooth(40, 48, style_seed)}, item="c", params=t.params()
    ).input


def _trained_files() -> list:
    d = trained_dir()
    return sorted(d.glob("*.pt")) if d.exists() else []


# ------------------------------------------------------------------------------------------ generator
def test_inputs_are_the_pooled_content_and_noise():
    content = torch.rand(2, 3, 32, 24, generator=torch.Generator().manual_seed(0))
    inputs = stylization_inputs(content, 3, 4, generator=torch.Generator().manual_seed(1))
    assert [tuple(x.shape) for x in inputs] == [(2, 7, 8, 6), (2, 7, 16, 12), (2, 7, 32, 24)]
    torch.testing.assert_close(inputs[-1][:, :3], content)
    torch.testing.assert_close(inputs[0][:, :3], F.avg_pool2d(content, 4))  # the code's average pooling
    noise = inputs[1][:, 3:]
    assert noise.min() >= 0 and noise.max() < 1 and noise.std() > 0.2
    with pytest.raises(ValueError):
        stylization_inputs(content[0], 3, 4, generator=torch.Generator())


@pytest.mark.parametrize("size", [(32, 32), (37, 51)])
def test_generator_output_has_the_content_size(size):
    gen = StylizationGenerator(scales=4, channels=8, noise_channels=3).eval()
    assert gen.branches[0][0].in_channels == 6  # content (3) + noise (3)
    x = stylization_inputs(torch.rand(2, 3, *size), 4, 3, generator=torch.Generator().manual_seed(0))
    assert gen(x).shape == (2, 3, *size)


def test_params_are_checked():
    with pytest.raises(ValueError, match="train_size"):
        TextureNetworksStyleParams(scales=6, train_size=16)
    with pytest.raises(ValueError, match="content_weight"):
        TextureNetworksStyleParams(content_weight=-1)
    with pytest.raises(ValueError, match="content_layer"):
        TextureNetworksStyleParams(content_layer="relu9_9")
    p = TextureNetworksStyleParams()
    # the authors' stylization_train.lua defaults
    assert (p.lr, p.batch_size, p.iterations, p.style_weight, p.content_weight) == (0.1, 16, 3000, 1e3, 0.6)
    assert p.content_layer == "relu4_2" and p.style_layers[-1] == "relu5_1"


def test_missing_training_folder_is_a_clear_error(tmp_path):
    m = TextureNetworksStyle.from_config(None, {"train_images": str(tmp_path / "nope")})
    with pytest.raises(ValueError, match="builtin-train"):
        m.training_images()


# ---------------------------------------------------------------------------------- method and cache
def test_outputs_seeds_and_training_cache(monkeypatch):
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    assert registry.synthesizers.get("texture-networks-style") is TextureNetworksStyle
    fast = {"iterations": 3}  # the cache and shapes do not need a converged generator
    m = TextureNetworksStyle.from_config("tiny", fast)
    a_in = _input(_smooth(37, 45, 1))
    m.prepare(a_in, seed=0, device=CPU)
    info = m.pop_info()
    assert info["train_cached"] is False and info["train_seconds"] > 0 and len(_trained_files()) == 1
    for size in [(37, 45), (33, 20)]:
        ti = _input(_smooth(*size, 3))
        out = m.run(ti, seed=0, device=CPU)
        assert out.shape == (3, *size) and out.min() >= 0 and out.max() <= 1
        torch.testing.assert_close(out, m.run(ti, seed=0, device=CPU), rtol=0, atol=0)
    assert not torch.equal(m.run(a_in, seed=0, device=CPU), m.run(a_in, seed=1, device=CPU))
    # a content image given at another size than the task's is resized to it
    t = get_task("style")
    big = t.build({"content": _smooth(40, 40, 4), "style": _smooth(40, 48, 2)}, item="c", params=t.params())
    assert m.run(big.input, seed=0, device=CPU).shape == (3, *big.input.size)

    # a new instance on the same style loads the generator; the content image is not part of the key
    m2 = TextureNetworksStyle.from_config("tiny", fast)
    m2.prepare(_input(_smooth(30, 30, 9)), seed=5, device=CPU)
    info2 = m2.pop_info()
    assert info2["train_cached"] is True and info2["train_key"] == info["train_key"]
    assert len(_trained_files()) == 1
    torch.testing.assert_close(m2.run(a_in, seed=0, device=CPU), m.run(a_in, seed=0, device=CPU))
    assert m2.provenance()["generator"] == f"trained:{info['train_key'][:16]}"

    # another style trains a new generator
    m2.prepare(_input(_smooth(37, 45, 1), style_seed=7), seed=0, device=CPU)
    info3 = m2.pop_info()
    assert info3["train_cached"] is False and info3["train_key"] != info["train_key"]
    assert len(_trained_files()) == 2


def test_bad_inputs(monkeypatch):
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    m = TextureNetworksStyle.from_config("tiny")
    t = get_task("texture")
    tex = t.build({"exemplar": _smooth(32, 32, 0)}, item="e", params=t.params({"size": 32})).input
    with pytest.raises(ValueError, match="style task"):
        m.run(tex, seed=0, device=CPU)
    ti = dataclasses.replace(_input(_smooth(32, 32, 1)), style=torch.rand(32, 32))
    with pytest.raises(ValueError, match="style"):
        m.prepare(ti, seed=0, device=CPU)
    assert _trained_files() == []


# ---------------------------------------------------------------------------------------- training
def test_training_lowers_the_objective_on_held_out_content(monkeypatch, texbench_home):
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")  # texbench_home: no weights, random init
    m = TextureNetworksStyle.from_config("tiny", {"iterations": 40})
    p: TextureNetworksStyleParams = m.params
    style = _smooth(40, 48, 2)
    m.prepare(_input(_smooth(32, 32, 1)), seed=0, device=CPU)
    assert m.provenance()["vgg19"].startswith("random-init")
    trained = m.generator(style, device=CPU)
    net = m._net(CPU)

    # the untrained generator, its batch-norm statistics calibrated on training crops like the trained one
    untrained = build_stylization_generator(p)
    images = m.training_images()
    rng = torch.Generator().manual_seed(123)

    def draw():
        x = images.random_crops(p.batch_size, p.train_size, rng)
        return stylization_inputs(x, p.scales, p.noise_channels, generator=rng)

    with torch.no_grad():
        calibrate_batch_norm(untrained, draw, p.calibration_batches)
    untrained.eval()

    # held-out content: crops of images the training never saw
    held_out = torch.stack([_smooth(48, 48, s)[:, 8:40, 4:36] for s in (11, 12, 13, 14)])
    targets = style_grams(style, net, p)
    losses = []
    for gen in (untrained, trained):
        x = stylization_inputs(
            held_out, p.scales, p.noise_channels, generator=torch.Generator().manual_seed(0)
        )
        with torch.no_grad():
            obj, _ = stylization_objective(gen(x).clamp(0, 1), held_out, targets, net, p)
        losses.append(float(obj.mean()))
    print("held-out objective untrained -> trained:", losses)
    assert losses[1] < 0.8 * losses[0], losses


def test_training_images_enter_the_key_by_identity_not_path(monkeypatch, tmp_path):
    import shutil

    from texbench.imageio import save_png

    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d in (a, c):
        d.mkdir()
    save_png(_smooth(48, 48, 20), a / "x.png")
    shutil.copytree(a, b)  # same files (names, sizes, mtimes), another path
    save_png(_smooth(48, 48, 21), c / "x.png")
    ti = _input(_smooth(32, 32, 1))
    keys = []
    for folder in (a, b, c):
        m = TextureNetworksStyle.from_config("tiny", {"train_images": str(folder), "iterations": 2})
        m.prepare(ti, seed=0, device=CPU)
        info = m.pop_info()
        keys.append((info["train_key"], info["train_cached"]))
    assert keys[0] == (keys[1][0], False) and keys[1][1] is True
    assert keys[2][0] != keys[0][0] and keys[2][1] is False
