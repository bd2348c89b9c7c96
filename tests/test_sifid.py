"""SiFID: closed forms, parity with pytorch-fid's blocks + formula on identical weights, options, contract."""

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


@pytest.mark.parametrize("dims", [64, 192])
def test_matches_pytorch_fid_blocks_and_formula(random_weights, dims):
    # 160x160 gives 17x17 = 289 vectors at the 192 block: full-rank covariances, where scipy's sqrtm
    # (pytorch-fid's formula) is accurate, so the reference is pytorch-fid end to end
    from unittest import mock

    import pytorch_fid.inception as pfi
    from pytorch_fid.fid_score import calculate_frechet_distance

    from texbench.nets.inception import pytorch_fid_state_dict, random_state_dict

    x, y = _pair(1, (160, 160)), _pair(2, (176, 160))
    ours = sifid(x, y, dims=dims)
    sd = pytorch_fid_state_dict(random_state_dict(0))  # the random-init fallback's weights
    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: sd):
        model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[dims]], resize_input=False).eval()
    ref = []
    for i in range(2):
        with torch.no_grad():
            fx, fy = (model(t[i : i + 1])[0][0].flatten(1).T.double().numpy() for t in (x, y))
        ref.append(
            calculate_frechet_distance(
                fx.mean(0), np.cov(fx, rowvar=False), fy.mean(0), np.cov(fy, rowvar=False)
            )
        )
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-5)
    assert min(ref) > 0


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
