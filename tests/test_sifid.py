"""SiFID: closed forms, parity with SinGAN's layout built on pytorch-fid's modules (random and real weights,
odd sizes, 1e-6 relative), options, contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from texbench.metrics.sifid import SiFID, SiFIDParams, sifid


@pytest.fixture
def random_weights(texbench_home, monkeypatch):
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    return texbench_home


def _pair(seed, size=(96, 96)):
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(2, 3, size[0] // 8, size[1] // 8, generator=g)
    return torch.nn.functional.interpolate(low, size=size, mode="bilinear", align_corners=False)


def test_sifid_of_an_image_with_itself_is_zero(random_weights):
    x = _pair(0)
    for dims in (64, 192):
        assert torch.allclose(sifid(x, x, dims=dims), torch.zeros(2, dtype=torch.float64), atol=1e-6)


_REFERENCE_NETS: dict[str, torch.nn.Module] = {}


def _reference_net(which: str) -> torch.nn.Module:
    """pytorch-fid's own FID Inception (``fid_inception_v3``) with texbench's random-init (``"random"``)
    or the real weights file (``"real"``), built once per test session (torchvision's init is slow)."""
    from unittest import mock

    import pytorch_fid.inception as pfi

    from texbench.nets.inception import FID_INCEPTION, pytorch_fid_state_dict, random_state_dict
    from texbench.nets.inception import state_dict_from_torchscript as from_ts

    if which not in _REFERENCE_NETS:
        if which == "random":
            sd = random_state_dict(0)
        else:
            from conftest import require_weights

            sd = from_ts(require_weights(FID_INCEPTION))
        with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: pytorch_fid_state_dict(sd)):
            _REFERENCE_NETS[which] = pfi.fid_inception_v3().eval()
    return _REFERENCE_NETS[which]


def _reference_taps(net, image, dims):
    """SinGAN's SIFID block output for one ``(3, H, W)`` image, built on pytorch-fid's own modules:
    block 0 = ``Conv2d_1a → 2a → 2b`` (no pool), block 1 = ``MaxPool → Conv2d_3b → 4a`` (no pool),
    input ``2x - 1``, no resize. Returns the ``(h·w, C)`` samples, float64."""
    with torch.no_grad():
        h = 2 * image[None].float() - 1
        h = net.Conv2d_2b_3x3(net.Conv2d_2a_3x3(net.Conv2d_1a_3x3(h)))
        if dims == 192:
            h = net.Conv2d_4a_3x3(net.Conv2d_3b_1x1(torch.nn.functional.max_pool2d(h, 3, 2)))
    return h[0].flatten(1).T.double().numpy()


def _reference_sifid(net, x, y, dims):
    """SiFID as SinGAN's script computes it (``np.cov`` of the spatial samples), with the trace term
    from symmetric eigendecompositions: Tr (S1 S2)^1/2 = Σ sqrt(eig(S1^1/2 S2 S1^1/2))."""
    fx, fy = _reference_taps(net, x, dims), _reference_taps(net, y, dims)
    m1, m2 = fx.mean(0), fy.mean(0)
    s1, s2 = np.cov(fx, rowvar=False), np.cov(fy, rowvar=False)
    w, v = np.linalg.eigh(s1)
    r1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    tr = np.sqrt(np.clip(np.linalg.eigvalsh(r1 @ s2 @ r1), 0, None)).sum()
    return float((m1 - m2) @ (m1 - m2) + np.trace(s1) + np.trace(s2) - 2 * tr)


@pytest.mark.parametrize("dims", [64, 192])
def test_matches_singan_layout_on_pytorch_fid_modules(random_weights, dims):
    # random weights (the fallback's); SinGAN's pre-pool layers, odd sizes
    x, y = _pair(1, (161, 129)), _pair(2, (147, 175))
    ours = sifid(x, y, dims=dims)
    ref = [_reference_sifid(_reference_net("random"), x[i], y[i], dims) for i in range(2)]
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-6)
    assert min(ref) > 0


@pytest.mark.weights
@pytest.mark.slow
@pytest.mark.parametrize("dims", [64, 192])
def test_matches_singan_layout_with_real_weights(shared_data, dims):
    # real FID Inception weights, real images cropped to odd sizes; outputs = shifted and noisy copies
    from conftest import require_weights

    from texbench.imageio import load_image
    from texbench.metrics.feature_cache import FeatureCache
    from texbench.nets.inception import FID_INCEPTION

    path = require_weights(FID_INCEPTION)
    files = sorted((shared_data / "kodak24").glob("*.png"))[:2]
    refs = [load_image(f)[:, 10:171, 20:149] for f in files]  # 161 x 129
    g = torch.Generator().manual_seed(0)
    outs = [
        torch.roll(refs[0], shifts=(40, 17), dims=(1, 2)),
        (refs[1] + 0.05 * torch.randn(refs[1].shape, generator=g)).clamp(0, 1),
    ]
    cache = FeatureCache(disk=False)
    ours = [float(sifid(o[None], r[None], dims=dims, weights_path=path, cache=cache)[0]) for o, r in zip(outs, refs, strict=True)]
    ref = [_reference_sifid(_reference_net("real"), o, r, dims) for o, r in zip(outs, refs, strict=True)]
    np.testing.assert_allclose(ours, ref, rtol=1e-6)
    assert min(ref) > 0


def test_sifid_uses_the_pre_pool_taps(random_weights):
    # the layer is SinGAN's: more positions than the pooled block FID's 192 features come from
    from texbench.metrics.inception_features import extract_features

    x = _pair(5, (161, 129))[0]
    feats, _ = extract_features([x], dims=(192, "conv2d_4a", 64, "conv2d_2b"), resize="none")
    assert feats["conv2d_4a"][0].shape == (192, 36, 28) and feats[192][0].shape == (192, 17, 13)
    assert feats["conv2d_2b"][0].shape == (64, 78, 62) and feats[64][0].shape == (64, 38, 30)


def test_single_reference_is_broadcast_and_pairs_of_any_size(random_weights):
    metric = SiFID.from_config({"dims": 64})
    x, y = _pair(3), _pair(4, (80, 112))
    broadcast = metric(x, y[:1])
    assert broadcast.shape == (2,) and broadcast.dtype == torch.float64
    assert torch.allclose(broadcast, metric.pairs([x[0], x[1]], [y[0], y[0]]))
    assert metric.params_dict() == {"dims": 64}
    # the layer choice is real: 64 and 192 give different values
    assert not torch.allclose(broadcast, SiFID(SiFIDParams(dims=192))(x, y[:1]))
    assert metric.provenance() == {"fid-inception": "random-init:seed=0"}


def test_bad_inputs_raise(random_weights):
    with pytest.raises(ValueError, match="x must have shape"):
        sifid(torch.rand(3, 64, 64), torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="y must hold"):
        sifid(torch.rand(2, 3, 64, 64), torch.rand(3, 3, 64, 64))
    with pytest.raises(ValueError, match="dims"):
        SiFID.from_config({"dims": 768})
    with pytest.raises(ValueError):
        sifid(torch.rand(1, 3, 20, 20), torch.rand(1, 3, 64, 64))  # too small for the 192 block


def test_stored_scores_of_the_old_layout_are_recomputed(tmp_path):
    # a SiFID value stored before metric versions (NULL: version 1, the pooled layout) is not "done"
    from texbench.store import Store

    assert SiFID.version == "2"
    with Store(tmp_path / "run") as store:
        store.write_scores("job", [{"column": "sifid", "metric": "sifid", "ref": "exemplar", "value": 1.0},
                                   {"column": "psnr", "metric": "psnr", "ref": "clean", "value": 30.0}])
        versions = {"sifid": SiFID.version, "psnr": "1"}.get
        assert store.scored_columns(versions) == {"job": {"psnr"}}
        store.write_scores("job", [{"column": "sifid", "metric": "sifid", "ref": "exemplar", "value": 2.0,
                                    "metric_version": "2"}])
        assert store.scored_columns(versions) == {"job": {"psnr", "sifid"}}
