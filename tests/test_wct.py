"""WCT (Li et al.): the transforms in closed form at every level, the mirror decoders, their training, and
the method's plumbing (multi-level with trained decoders; preset relu4 with the AdaIN decoder)."""

from __future__ import annotations

import pytest
import torch

from texbench.synthesizers import wct as W
from texbench.synthesizers.wct import WCT, WCTParams, colour, wct, whiten
from texbench.tasks import TaskInput

CPU = torch.device("cpu")


def _features(c, n, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(c, c, generator=g, dtype=torch.float64)
    return (mix @ torch.rand(c, n, generator=g, dtype=torch.float64) * scale + 3.0).float()


def test_whitened_features_have_identity_covariance():
    f = _features(16, 900, 0, scale=7.0)
    w = whiten(f, eps=0.0)
    torch.testing.assert_close(w.mean(1), torch.zeros(16, dtype=w.dtype), atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.cov(w), torch.eye(16, dtype=w.dtype), atol=1e-4, rtol=0)


def test_code_eps_damps_the_whitening_in_closed_form():
    f = _features(8, 600, 1)
    centred = f.double() - f.double().mean(1, keepdim=True)
    vals, vecs = torch.linalg.eigh(torch.cov(centred))
    expect = vecs @ torch.diag(vals / (vals + 1.0)) @ vecs.T
    torch.testing.assert_close(torch.cov(whiten(f, eps=1.0)), expect, atol=1e-6, rtol=0)


def test_coloured_features_have_the_style_covariance_and_mean():
    content, style = _features(16, 900, 2, scale=4.0), _features(16, 700, 3, scale=0.5)
    out = colour(whiten(content, eps=0.0), style)
    s = style.double()
    torch.testing.assert_close(out.mean(1), s.mean(1), atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.cov(out), torch.cov(s), atol=1e-4, rtol=0)


def test_alpha_blends_with_the_content_features():
    c = _features(8, 64, 4).reshape(1, 8, 8, 8)
    s = _features(8, 80, 5).reshape(1, 8, 8, 10)
    torch.testing.assert_close(wct(c, s, alpha=0.0), c)
    full = wct(c, s, alpha=1.0)
    torch.testing.assert_close(wct(c, s, alpha=0.6), 0.6 * full + 0.4 * c, atol=1e-5, rtol=0)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="feat"):
        whiten(torch.zeros(3, 4, 4))
    with pytest.raises(ValueError, match="alpha"):
        WCTParams(alpha=1.5)
    with pytest.raises(ValueError, match="style_size"):
        WCTParams(style_size=4)
    with pytest.raises(ValueError, match="levels"):
        WCTParams(levels=("relu6_1",))
    with pytest.raises(ValueError, match="levels"):
        WCTParams(decoder="adain")  # the AdaIN decoder inverts relu4_1 only
    with pytest.raises(ValueError, match="levels"):
        WCTParams(levels=("relu4_1", "relu4_1"))


@pytest.mark.parametrize("size", [(16, 24), (37, 50)])
def test_method_output_has_the_content_size(monkeypatch, size):
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    g = torch.Generator().manual_seed(0)
    c, s = torch.rand(3, *size, generator=g), torch.rand(3, 40, 32, generator=g)
    inp = TaskInput("style", "x", size, content=c, style=s)
    out = WCT.from_config("relu4", {"style_size": 64}).run(inp, seed=0, device=CPU)
    assert out.shape == (3, *size) and out.min() >= 0 and out.max() <= 1
    other = WCT.from_config("relu4", {"style_size": 64, "alpha": 0.2}).run(inp, seed=0, device=CPU)
    assert not torch.allclose(out, other, atol=1e-4)


# ------------------------------------------------------------------------------------ every level
@pytest.fixture(scope="module")
def level_features():
    """Real-size features of a smooth image at each level (random VGG weights: statistics, not values)."""
    import os

    before = os.environ.get("TEXBENCH_ALLOW_RANDOM_WEIGHTS")
    os.environ["TEXBENCH_ALLOW_RANDOM_WEIGHTS"] = "1"
    try:
        g = torch.Generator().manual_seed(0)
        img = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8, generator=g), size=(64, 64),
                                              mode="bicubic").clamp(0, 1)
        sty = torch.rand(1, 3, 64, 80, generator=g)
        return {lv: (W.encoder(lv, CPU)(img)[lv][0].flatten(1), W.encoder(lv, CPU)(sty)[lv][0].flatten(1))
                for lv in W.LEVELS}
    finally:
        if before is None:
            os.environ.pop("TEXBENCH_ALLOW_RANDOM_WEIGHTS")
        else:
            os.environ["TEXBENCH_ALLOW_RANDOM_WEIGHTS"] = before


@pytest.mark.parametrize("level", [pytest.param(lv, marks=[pytest.mark.slow] if lv in ("relu5_1", "relu4_1") else [])
                                   for lv in W.LEVELS])
def test_every_level_whitens_to_identity_and_colours_to_the_style(level_features, level):
    fc, fs = level_features[level]
    # synthetic full-rank features with the level's channel count (VGG features of one small image are
    # rank-deficient at 512 channels, where the authors' eigenvalue cut-off removes directions)
    c = fc.shape[0]
    content, style = _features(c, 4 * c, 10, scale=3.0), _features(c, 3 * c + 7, 11, scale=0.7)
    w = whiten(content)
    torch.testing.assert_close(torch.cov(w), torch.eye(c, dtype=w.dtype), atol=1e-4, rtol=0)
    out = colour(w, style)
    torch.testing.assert_close(out.mean(1), style.double().mean(1), atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.cov(out), torch.cov(style.double()), atol=1e-4, rtol=0)
    # the real features: on the directions the cut-off keeps, the whitened covariance is the identity,
    # and the coloured features carry the style's mean and (retained) covariance
    wr = whiten(fc)
    vals = torch.linalg.eigvalsh(torch.cov(wr))
    assert torch.allclose(vals[vals > 0.5], torch.ones_like(vals[vals > 0.5]), atol=1e-4)
    torch.testing.assert_close(colour(wr, fs).mean(1), fs.double().mean(1), atol=1e-4, rtol=0)


def test_mirror_decoders_invert_each_level_in_shape():
    import os

    os.environ.setdefault("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    # one conv per encoder conv up to the level (the authors' feature_invertor_conv{k}_1)
    convs = {"relu1_1": 1, "relu2_1": 3, "relu3_1": 5, "relu4_1": 9, "relu5_1": 13}
    for level in W.LEVELS:
        dec = W.MirrorDecoder(level)
        assert len(dec.convs) == convs[level] and dec.plan[-1][1] == 3
        s = W._stride(level)
        f = torch.rand(1, dec.plan[0][0], 3, 4)
        assert dec(f).shape == (1, 3, 3 * s, 4 * s)
    # relu4_1's mirror is the AdaIN decoder's architecture, conv for conv
    from texbench.nets.adain import AdaINDecoder

    adain = AdaINDecoder(random=True)
    assert [c.weight.shape for c in adain.convs] == [c.weight.shape for c in W.MirrorDecoder("relu4_1").convs]


@pytest.mark.slow
def test_trained_decoders_reduce_the_reconstruction_loss_on_held_out_images(monkeypatch):
    """The decoders of relu2_1 and relu1_1, trained briefly on builtin-train, reconstruct held-out
    photographs (never trained on) better than their initialisation. (The deeper decoders train through
    the same code; on this machine's shared CPU one of their steps takes 3-15 s, too slow for a test.)"""
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    import skimage.data

    from texbench.ops.resize import resize

    held_out = torch.stack([resize(torch.from_numpy(getattr(skimage.data, n)()).permute(2, 0, 1).float() / 255,
                                   (32, 32)) for n in ("astronaut", "coffee")])
    levels = ("relu2_1", "relu1_1")
    m = WCT.from_config("tiny", {"iterations": 12, "lr": 1e-3, "levels": levels})
    stages = m.stages(CPU)
    info = m.pop_info()
    assert info["train_cached"] is False and len(info["train_keys"]) == 2 and info["train_seconds"] > 0
    for level, enc, dec in stages:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # the training's initialisation (train_seed 0)
            init = W.MirrorDecoder(level)
        with torch.no_grad():
            before = W.reconstruction_loss(enc, init, held_out, level)[0].item()
            after = W.reconstruction_loss(enc, dec, held_out, level)[0].item()
        assert after < 0.8 * before, (level, before, after)
    again = WCT.from_config("tiny", {"iterations": 12, "lr": 1e-3, "levels": levels, "alpha": 0.3})
    again.stages(CPU)
    info2 = again.pop_info()
    assert info2["train_cached"] is True and info2["train_key"] == info["train_key"], "alpha does not retrain"
    one = WCT.from_config("tiny", {"iterations": 12, "lr": 1e-3, "levels": ("relu1_1",)})
    one.stages(CPU)
    assert one.pop_info()["train_keys"] == info["train_keys"][1:], "each level's decoder is shared"


@pytest.mark.slow
def test_multi_level_method_runs_coarse_to_fine(monkeypatch):
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    g = torch.Generator().manual_seed(1)
    c, s = torch.rand(3, 40, 52, generator=g), torch.rand(3, 48, 48, generator=g)
    inp = TaskInput("style", "x", (40, 52), content=c, style=s)
    m = WCT.from_config("tiny")
    out = m.run(inp, seed=0, device=CPU)
    assert out.shape == (3, 40, 52) and 0 <= out.min() and out.max() <= 1
    assert set(m.provenance()) == {"vgg19-normalised", *(f"decoder-{lv}" for lv in W.LEVELS)}
    one = WCT.from_config("tiny", {"levels": ("relu3_1",)}).run(inp, seed=0, device=CPU)
    assert not torch.allclose(out, one, atol=1e-3)
    with pytest.raises(ValueError, match="content"):
        m.run(TaskInput("style", "x", (20, 20), content=torch.rand(3, 20, 20), style=s), seed=0, device=CPU)
