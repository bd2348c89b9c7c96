"""Gatys et al. (texture, style), VGG inversion, the VGG-19 extractor, Gram statistics and the VGG metrics.

Synthesis tests run with fixed weights: the real normalised VGG-19 when it is cached (``require_weights``)
and a seeded random VGG-19 in every case, so the optimisation is exercised even offline.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import require_weights

from texbench.nets import vgg19 as vf
from texbench.nets.vgg19 import STYLE_LAYERS, VGG19_NORMALISED, VGG19Features
from texbench.ops.color import rgb_to_yiq
from texbench.ops.gram import gram_matrix, style_loss
from texbench.synthesizers.gatys import Gatys, VGGInversion
from texbench.tasks import TaskInput
from texbench.weights import WeightsNotFoundError


# ------------------------------------------------------------------------------------------------ helpers
def _exemplar(size: int = 64) -> torch.Tensor:
    """A real texture (scikit-image's brick photograph), ``(3, size, size)`` in [0, 1]."""
    import skimage.data
    import torch.nn.functional as F

    g = torch.from_numpy(skimage.data.brick()).float().div(255)[None, None]
    g = F.interpolate(g[..., :256, :256], size=(size, size), mode="area")
    return g[0].expand(3, -1, -1).contiguous()


def _content_style(size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    import skimage.data
    import torch.nn.functional as F

    def rgb(a):
        x = torch.from_numpy(a).float().div(255).permute(2, 0, 1)[None]
        return F.interpolate(x, size=(size, size), mode="area")[0]

    return rgb(skimage.data.astronaut()), rgb(skimage.data.coffee()[:, 100:500])


@pytest.fixture(params=["random", "real"])
def weights_mode(request, monkeypatch, tmp_path):
    """Fixed VGG-19 weights: seeded random (always) or the cached real normalised VGG-19."""
    if request.param == "real":
        require_weights(VGG19_NORMALISED)
    else:
        monkeypatch.setenv("TEXBENCH_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    return request.param


@pytest.fixture
def random_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("TEXBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")


def _texture(g: Gatys, ex: torch.Tensor, size=(64, 64), seed=0) -> tuple[torch.Tensor, dict]:
    out = g.run(TaskInput("texture", "t", size, image=ex), seed=seed, device=torch.device("cpu"))
    return out, g.pop_info()


# ------------------------------------------------------------------------------------ tier 1: closed forms
@pytest.mark.parametrize("normalize,factor", [("positions", 1.0), ("all", 1 / 4), ("none", 6 * 5)])
def test_gram_of_constant_image(normalize, factor):
    a = 1.7
    g = gram_matrix(torch.full((2, 4, 6, 5), a, dtype=torch.float64), normalize=normalize)
    assert g.shape == (2, 4, 4)
    torch.testing.assert_close(g, torch.full_like(g, a * a * factor))


def test_gram_matches_definition_and_is_symmetric():
    f = torch.randn(3, 5, 7, 4, dtype=torch.float64)
    g = gram_matrix(f)
    expected = torch.einsum("nchw,ndhw->ncd", f, f) / (7 * 4)
    torch.testing.assert_close(g, expected)
    torch.testing.assert_close(g, g.transpose(1, 2))


def test_style_loss_closed_form_constant_features():
    # constant maps a and b with C channels: ΔG = (a² − b²) everywhere, w = 1/C -> (a² − b²)² per layer
    a, b = 1.5, 0.5
    layers_c = (3, 8)
    grams = [gram_matrix(torch.full((1, c, 4, 4), a, dtype=torch.float64)) for c in layers_c]
    targets = [gram_matrix(torch.full((1, c, 9, 9), b, dtype=torch.float64)) for c in layers_c]
    value = style_loss(grams, targets)
    torch.testing.assert_close(value, torch.tensor([2 * (a * a - b * b) ** 2], dtype=torch.float64))
    uniform = style_loss(grams, targets, layer_weights="uniform")
    expected = sum(c * c for c in layers_c) * (a * a - b * b) ** 2
    torch.testing.assert_close(uniform, torch.tensor([expected], dtype=torch.float64))


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="normalize"):
        gram_matrix(torch.zeros(1, 2, 3, 3), normalize="bogus")
    with pytest.raises(ValueError, match="features"):
        gram_matrix(torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match="layer"):
        VGG19Features(("relu9_9",))
    with pytest.raises(ValueError, match="style_layers"):
        Gatys.from_config(overrides={"style_layers": ["conv1_1"]})
    with pytest.raises(ValueError, match="bogus"):
        Gatys.from_config(overrides={"bogus": 1})


# ----------------------------------------------------------------------------------- weights and mapping
def test_normalised_first_layer_is_caffe_preprocessing():
    require_weights(VGG19_NORMALISED)
    net = VGG19Features(("relu1_1",))
    assert net.provenance.startswith("vgg19-normalised@sha256:804ca2835ecf")
    pixel = torch.tensor([0.2, 0.6, 1.0]).view(1, 3, 1, 1)  # R, G, B
    out = net.preprocess(pixel).flatten()
    mean_bgr = torch.tensor([103.939, 116.779, 123.68])
    expected = torch.tensor([1.0, 0.6, 0.2]) * 255 - mean_bgr  # B, G, R ×255 − mean
    torch.testing.assert_close(out, expected, atol=1e-3, rtol=0)


def test_normalised_matches_the_files_own_layout():
    """Our extractor (reflection padding, max pooling) equals the file's AdaIN nn.Sequential."""
    path = require_weights(VGG19_NORMALISED)
    layers: list[nn.Module] = [nn.Conv2d(3, 3, 1)]
    cin = 3
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512):
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        else:
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(cin, v, 3), nn.ReLU()]
            cin = v
    ref = nn.Sequential(*layers)
    sd = torch.load(path, weights_only=True)
    ref.load_state_dict({k: v for k, v in sd.items() if int(k.split(".")[0]) < len(ref)}, strict=True)
    x = torch.rand(1, 3, 32, 32)
    ours = VGG19Features(("relu4_1",), pooling="max", padding="reflect")(x)["relu4_1"]
    with torch.no_grad():
        torch.testing.assert_close(ours, ref(x), rtol=1e-4, atol=1e-4)


def test_imagenet_mapping_matches_torchvision(random_weights):
    """torchvision's VGG-19 state_dict loads index by index and reproduces ``features`` (max pool, zeros)."""
    import torchvision

    tv = torchvision.models.vgg19().eval()
    net = VGG19Features(("relu5_4",), weights="imagenet", pooling="max", padding="zeros")
    net._load(tv.state_dict())
    x = torch.rand(1, 3, 32, 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(
            net(x)["relu5_4"], tv.features[:36]((x - mean) / std), rtol=1e-4, atol=1e-5
        )


def test_missing_weights_raise_unless_random_init_allowed(monkeypatch, tmp_path):
    monkeypatch.setenv("TEXBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", raising=False)
    with pytest.raises(WeightsNotFoundError, match="vgg19-normalised"):
        VGG19Features(("relu1_1",))
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    net = VGG19Features(("relu1_1",), random_seed=7)
    assert net.provenance == "random-init:seed=7"
    assert not any(p.requires_grad for p in net.parameters()) and not net.training


def test_truncation_and_options_change_the_network(random_weights):
    net = VGG19Features(("relu2_1",))
    assert len(net.convs) == 3  # conv1_1, conv1_2, conv2_1: nothing after the deepest layer
    x = torch.rand(1, 3, 16, 16)
    avg = net(x)["relu2_1"]
    assert not torch.equal(avg, VGG19Features(("relu2_1",), pooling="max")(x)["relu2_1"])
    assert not torch.equal(avg, VGG19Features(("relu2_1",), padding="reflect")(x)["relu2_1"])
    plain = VGG19Features(("relu2_1",), channels_last=False)(x)["relu2_1"]
    assert avg.is_contiguous(memory_format=torch.channels_last) and plain.is_contiguous()
    torch.testing.assert_close(avg, plain, rtol=1e-4, atol=1e-6 * plain.abs().max().item())
    ga, gp = gram_matrix(avg), gram_matrix(plain)
    torch.testing.assert_close(ga, gp, rtol=1e-4, atol=1e-6 * gp.abs().max().item())


# ------------------------------------------------------------------------------------------- synthesis
def test_texture_tiny_lowers_style_loss_95_percent(weights_mode):
    from texbench.metrics.gram_distance import gram_distance

    ex = _exemplar(64)
    g = Gatys.from_config("tiny")
    out, info = _texture(g, ex)
    assert out.shape == (3, 64, 64) and out.dtype == torch.float32
    assert 0 <= out.min() and out.max() <= 1
    assert info["optimizer"] == "lbfgs-b" and info["evals"] <= g.params.max_evals + 5
    assert info["style_loss_end"] <= 0.05 * info["style_loss_start"], info
    # the recorded loss is the Gram distance of the returned image (independent float64 computation)
    net = g._nets[next(iter(g._nets))]
    d = gram_distance(out[None], ex[None], extractor=net)
    torch.testing.assert_close(d.item(), info["style_loss_end"], rtol=1e-3, atol=0)
    # non-increasing per L-BFGS iteration, within float32 noise
    curve = info["loss_curve"]
    assert len(curve) >= 5 and curve[-1] < curve[0]
    assert all(b <= a * (1 + 1e-5) + 1e-12 for a, b in zip(curve, curve[1:], strict=False)), curve
    assert info["loss_curve_evals"] == sorted(info["loss_curve_evals"])
    assert g.provenance()["vgg19"].startswith(
        "random-init" if weights_mode == "random" else "vgg19-normalised"
    )


def test_torch_lbfgs_curve_is_monotone(random_weights):
    g = Gatys.from_config("tiny", {"optimizer": "lbfgs", "max_evals": 8})
    out, info = _texture(g, _exemplar(32), size=(32, 32))
    curve = info["loss_curve"]
    assert info["optimizer"] == "lbfgs" and len(curve) >= 3
    assert all(b <= a * (1 + 1e-5) + 1e-12 for a, b in zip(curve, curve[1:], strict=False)), curve
    assert 0 <= out.min() and out.max() <= 1


def test_same_seed_same_output_and_size_independent_of_exemplar(random_weights):
    ex = _exemplar(40)
    g = Gatys.from_config("tiny", {"max_evals": 3})
    a, _ = _texture(g, ex, size=(32, 48), seed=3)
    b, _ = _texture(Gatys.from_config("tiny", {"max_evals": 3}), ex, size=(32, 48), seed=3)
    c, _ = _texture(g, ex, size=(32, 48), seed=4)
    assert a.shape == (3, 32, 48)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_adam_is_selectable_and_recorded(random_weights):
    ex = _exemplar(32)
    out_adam, info = _texture(
        Gatys.from_config("tiny", {"optimizer": "adam", "max_evals": 4}), ex, size=(32, 32)
    )
    assert info["optimizer"] == "adam" and info["evals"] == 4 and len(info["loss_curve"]) == 4
    assert 0 <= out_adam.min() and out_adam.max() <= 1
    out_lbfgs, info2 = _texture(Gatys.from_config("tiny", {"max_evals": 4}), ex, size=(32, 32))
    assert info2["optimizer"] == "lbfgs-b"
    assert not torch.equal(out_adam, out_lbfgs)


def test_coarse_to_fine_runs_every_level(random_weights):
    g = Gatys.from_config("tiny", {"scales": 2, "max_evals": 6})
    out, info = _texture(g, _exemplar(32), size=(32, 32))
    assert out.shape == (3, 32, 32)
    assert info["evals"] >= 6 and info["iterations"] >= 2


def test_style_transfer_content_weight_and_colour(random_weights):
    from texbench.metrics.vgg_content_distance import vgg_content_distance

    c, s = _content_style(32)
    inp = TaskInput("style", "a+c", (32, 32), content=c, style=s)
    outs = {}
    for lam in (0.0, 1e4):
        g = Gatys.from_config("tiny", {"content_weight": lam, "init": "noise", "max_evals": 6})
        outs[lam] = g.run(inp, seed=0, device=torch.device("cpu"))
        assert g.pop_info()["optimizer"] == "lbfgs-b"
    net = VGG19Features(("relu4_2",))
    d = {lam: vgg_content_distance(o[None], c[None], extractor=net).item() for lam, o in outs.items()}
    assert outs[0.0].shape == (3, 32, 32)
    assert d[1e4] < d[0.0]  # the content term pulls the output towards the content
    g = Gatys.from_config("tiny", {"preserve_color": True, "init": "content", "max_evals": 3})
    out = g.run(inp, seed=0, device=torch.device("cpu"))
    iq_out, iq_c = rgb_to_yiq(out[None])[:, 1:], rgb_to_yiq(c[None])[:, 1:]
    assert (iq_out - iq_c).abs().mean() < 0.02  # chrominance is the content's (up to clipping)


def test_vgg_inversion_rebuilds_the_target_layer(random_weights):
    c, s = _content_style(32)
    g = VGGInversion.from_config("tiny")
    out = g.run(TaskInput("style", "a+c", (32, 32), content=c, style=s), seed=0, device=torch.device("cpu"))
    info = g.pop_info()
    assert out.shape == (3, 32, 32)
    assert info["loss_curve"][-1] < 0.5 * info["loss_curve"][0]
    with pytest.raises(ValueError, match="style task"):
        g.run(TaskInput("texture", "t", (32, 32), image=c), seed=0, device=torch.device("cpu"))


def test_params_are_frozen_dataclasses_with_tiny_preset():
    p = Gatys.from_config("tiny").params
    assert dataclasses.is_dataclass(p) and p.max_evals < Gatys.Params().max_evals
    assert Gatys.Params().style_layers == STYLE_LAYERS and Gatys.Params().pooling == "avg"


# --------------------------------------------------------------------------------------------- metrics
def test_gram_distance_metric_properties(random_weights):
    from texbench.metrics.gram_distance import GramDistance

    m = GramDistance()
    x = torch.rand(3, 3, 32, 32)
    y = torch.rand(1, 3, 40, 24)  # unpaired: any size
    v = m(x, y)
    assert v.dtype == torch.float64 and v.shape == (3,) and (v > 0).all()
    torch.testing.assert_close(m(x[1:2], y), v[1:2])  # independent of the batch
    assert m(x, x).abs().max() < 1e-9
    assert m.provenance()["vgg19"].startswith("random-init")
    with pytest.raises(ValueError, match="y must hold"):
        m(x, torch.rand(2, 3, 32, 32))


def test_vgg_content_distance_metric_properties(random_weights):
    from texbench.metrics.vgg_content_distance import VGGContentDistance

    m = VGGContentDistance()
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    v = m(x, y)
    assert v.shape == (2,) and (v > 0).all()
    torch.testing.assert_close(m(y, x), v)
    torch.testing.assert_close(m(x[:1], y[:1]), v[:1])
    assert (m(x, x) == 0).all()
    with pytest.raises(ValueError, match="same shape"):
        m(x, torch.rand(2, 3, 16, 16))


def test_spec_registered_through_entry_point():
    from texbench.weights import all_specs

    specs = all_specs()
    assert specs["vgg19-normalised"] is vf.VGG19_NORMALISED
    assert specs["vgg19-imagenet"].sources[0].url == "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"


# ------------------------------------------------------------------ the authors' settings (DeepTextures)
def test_deeptextures_preset_pins_the_authors_constants():
    """Every constant of leongatys/DeepTextures' Example.ipynb and DeepImageSynthesis/, typed in here."""
    p = Gatys.from_config("deeptextures").params
    # tex_layers = ['pool4', 'pool3', 'pool2', 'pool1', 'conv1_1'] (Caffe's blob conv1_1 is rectified in place)
    assert p.style_layers == ("relu1_1", "pool1", "pool2", "pool3", "pool4")
    assert p.style_weights == (1e9, 1e9, 1e9, 1e9, 1e9)  # tex_weights
    assert p.gram_norm == "positions"  # Misc.gram_matrix: np.dot(F, F.T) / M
    assert p.layer_weights == "half-inverse-channels"  # gram_mse_loss: weight/4 * sum((G - A)**2) / N**2
    # VGG_ave_pool_deploy.prototxt + vgg_normalised.caffemodel (pad 1 = zeros)
    assert (p.weights, p.pooling, p.padding) == ("normalised", "avg", "zeros")
    # minimize(method='L-BFGS-B', options={'maxiter': 2000, 'maxcor': 20, 'ftol': 0, 'gtol': 0}); maxfun default
    assert (p.optimizer, p.max_iterations, p.history_size, p.max_evals) == ("lbfgs-b", 2000, 20, 15000)
    # init = np.random.randn(...) on Caffe's input; bounds = get_bounds([source_img]); variable on 0-255
    assert (p.noise, p.bounds, p.pixel_scale, p.scales) == ("mean-pixel-normal", "exemplar", 255.0, 1)
    # the default stays the course's setting
    d = Gatys.Params()
    assert d.style_layers == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    assert (d.layer_weights, d.style_weights, d.gram_norm, d.noise, d.bounds) == (
        "inverse-channels",
        (),
        "positions",
        "uniform",
        "unit",
    )
    # vgg-inversion: the last conv layer (with its ReLU) of the VGG-19 truncated at relu5_1
    assert VGGInversion.Params().layer == "relu5_1"


def _gram_mse_loss(act: np.ndarray, target_gram: np.ndarray, weight: float) -> tuple[float, np.ndarray]:
    """DeepTextures' LossFunctions.gram_mse_loss for one (1, N, H, W) activation, re-typed from its code."""
    n = act.shape[1]
    m = act.shape[2] * act.shape[3]
    f = act.reshape(n, -1)
    g = f @ f.T / m
    loss = weight / 4 * ((g - target_gram) ** 2).sum() / n**2
    grad = (weight * (f.T @ (g - target_gram)).T / (m * n**2)).reshape(act.shape)
    return loss, grad


def test_deeptextures_loss_and_gradient_equal_the_authors_definition(random_weights):
    from texbench.synthesizers.gatys import gram_style_loss

    p = Gatys.from_config("deeptextures").params
    net = VGG19Features(p.style_layers)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        ex = {k: v.double() for k, v in net(torch.rand(1, 3, 37, 45, generator=g)).items()}
        cur = {
            k: v.double().requires_grad_(True) for k, v in net(torch.rand(1, 3, 33, 41, generator=g)).items()
        }
    targets = [gram_matrix(ex[n]) for n in p.style_layers]
    ours = gram_style_loss(cur, targets, p)[0]
    ours.backward()
    total = 0.0
    for name, w in zip(p.style_layers, p.style_weights, strict=True):
        a = ex[name].numpy()[0]
        target = a.reshape(a.shape[0], -1) @ a.reshape(a.shape[0], -1).T / (a.shape[1] * a.shape[2])
        loss, grad = _gram_mse_loss(cur[name].detach().numpy(), target, w)
        total += loss
        np.testing.assert_allclose(cur[name].grad.numpy(), grad, rtol=1e-9, atol=1e-12 * np.abs(grad).max())
    assert total > 1.0  # weights of 1e9: far from a vacuous 0 == 0
    np.testing.assert_allclose(ours.item(), total, rtol=1e-12)


def test_deeptextures_optimiser_call_is_the_authors(random_weights, monkeypatch):
    """scipy's minimize gets their options, bounds and start on Caffe's 0-255 scale, and a gradient
    that is the pixel gradient / 255."""
    import scipy.optimize

    from texbench.synthesizers.gatys import gram_style_loss

    seen = {}

    def fake_minimize(fun, x0, **kw):
        seen.update(kw, x0=x0.copy(), fg=fun(x0))
        return scipy.optimize.OptimizeResult(x=x0, nit=0, fun=seen["fg"][0])

    monkeypatch.setattr(scipy.optimize, "minimize", fake_minimize)
    ex = _exemplar(32)
    g = Gatys.from_config("deeptextures")
    _texture(g, ex, size=(24, 20), seed=5)
    assert seen["method"] == "L-BFGS-B" and seen["jac"] is True
    assert seen["options"] == {"maxfun": 15000, "maxiter": 2000, "maxcor": 20, "ftol": 0.0, "gtol": 0.0}
    mean_bgr = np.array([103.939, 116.779, 123.68])
    caffe = ex.double().numpy()[::-1] * 255 - mean_bgr[:, None, None]  # BGR, 0-255, mean removed
    lo, hi = caffe.min(), caffe.max()
    mean_rgb = mean_bgr[::-1][:, None, None] * np.ones((3, 24, 20))
    np.testing.assert_allclose(seen["bounds"].lb, (lo + mean_rgb).ravel(), rtol=1e-6)
    np.testing.assert_allclose(seen["bounds"].ub, (hi + mean_rgb).ravel(), rtol=1e-6)
    start = seen["x0"].reshape(3, 24, 20) - mean_rgb  # randn on Caffe's scale
    assert abs(start.mean()) < 0.1 and abs(start.std() - 1) < 0.1
    # the function value and gradient at the start: the loss of x0/255, d/dx divided by 255
    net = g._nets[next(iter(g._nets))]
    x = torch.from_numpy(seen["x0"] / 255).float().view(1, 3, 24, 20).requires_grad_(True)
    with torch.no_grad():
        targets = [gram_matrix(f) for f in net(ex[None]).values()]
    loss = gram_style_loss(net(x), targets, g.params)[0]
    loss.backward()
    f0, g0 = seen["fg"]
    np.testing.assert_allclose(f0, loss.item(), rtol=1e-5)
    np.testing.assert_allclose(
        g0, x.grad.double().numpy().ravel() / 255, rtol=1e-4, atol=1e-6 * np.abs(g0).max()
    )


def test_max_iterations_stops_lbfgs_there(random_weights):
    g = Gatys.from_config("tiny", {"max_iterations": 2, "max_evals": 50})
    _, info = _texture(g, _exemplar(32), size=(32, 32))
    assert info["iterations"] == 2 and info["evals"] < 50
    with pytest.raises(ValueError, match="style_weights"):
        Gatys.from_config(overrides={"style_weights": [1.0, 2.0]})
