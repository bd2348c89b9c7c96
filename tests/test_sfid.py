"""sFID: parity with an independent computation on pytorch-fid's modules (a forward hook on
``Mixed_6d.branch1x1``), random and real weights, to 1e-6 relative; one pass shared with FID; the CLI."""

from __future__ import annotations

import json
from unittest import mock

import numpy as np
import pytest
import torch

from texbench.metrics.sfid import SFID, SFID_DIM


@pytest.fixture
def random_weights(texbench_home, monkeypatch):
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    return texbench_home


def _images(seed, n, size=(64, 80)):
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, size[0] // 8, size[1] // 8, generator=g)
    return list(torch.nn.functional.interpolate(low, size=size, mode="bilinear", align_corners=False))


def _reference_features(state_dict, images):
    """pytorch-fid's InceptionV3 (bilinear resize to 299, 2x - 1) with a hook on ``Mixed_6d.branch1x1``
    (conv, batch norm, ReLU): its first 7 channels, flattened, float64 ``(n, 2023)``."""
    import pytorch_fid.inception as pfi

    from texbench.nets.inception import pytorch_fid_state_dict

    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: pytorch_fid_state_dict(state_dict)):
        model = pfi.InceptionV3([2], resize_input=True, normalize_input=True).eval()
    # pytorch-fid's block 2: Mixed_5b-d (A), Mixed_6a (B), Mixed_6b-e (C): the third C block is Mixed_6d
    branch = [m for m in model.blocks[2] if isinstance(m, pfi.FIDInceptionC)][2].branch1x1
    got = []
    handle = branch.register_forward_hook(lambda mod, inp, out: got.append(out[:, :7].flatten(1).clone()))
    with torch.no_grad():
        for img in images:
            model(img[None])
    handle.remove()
    return torch.cat(got).double().numpy()


def _reference_frechet(f1, f2):
    """Fréchet distance of two feature sets; Tr (S1 S2)^1/2 = the sum of singular values of
    A1 A2ᵀ / sqrt((n1 - 1)(n2 - 1)) for the centred feature matrices A (exact when n < d)."""
    a1, a2 = f1 - f1.mean(0), f2 - f2.mean(0)
    n1, n2 = len(f1), len(f2)
    tr = np.linalg.svd(a1 @ a2.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
    d = f1.mean(0) - f2.mean(0)
    return float(d @ d + (a1 * a1).sum() / (n1 - 1) + (a2 * a2).sum() / (n2 - 1) - 2 * tr)


@pytest.mark.slow
def test_matches_a_hook_on_pytorch_fid_modules(random_weights):
    from texbench.nets.inception import random_state_dict

    xs, ys = _images(1, 5), _images(2, 4, (72, 56))
    res = SFID().compute_sets(xs, ys)
    sd = random_state_dict(0)
    fx, fy = _reference_features(sd, xs), _reference_features(sd, ys)
    assert fx.shape == (5, SFID_DIM) == (5, 2023)
    np.testing.assert_allclose(SFID().features(xs), fx, rtol=1e-4, atol=1e-5)
    ref = _reference_frechet(fx, fy)
    np.testing.assert_allclose(res["value"], ref, rtol=1e-6)
    assert ref > 0 and res["n_outputs"] == 5 and res["n_references"] == 4


@pytest.mark.weights
@pytest.mark.slow
def test_matches_a_hook_on_pytorch_fid_modules_with_real_weights(shared_data, monkeypatch, tmp_path):
    from conftest import require_weights

    from texbench.imageio import load_image
    from texbench.nets.inception import FID_INCEPTION, state_dict_from_torchscript

    path = require_weights(FID_INCEPTION)
    monkeypatch.setenv("TEXBENCH_FEATURE_CACHE", "0")
    files = sorted((shared_data / "kodak24").glob("*.png"))[:12]
    imgs = [load_image(f)[:, :161, :129] for f in files]
    xs, ys = imgs[:6], imgs[6:]
    metric = SFID()
    metric.weights_path = str(path)
    res = metric.compute_sets(xs, ys)
    sd = state_dict_from_torchscript(path)
    ref = _reference_frechet(_reference_features(sd, xs), _reference_features(sd, ys))
    np.testing.assert_allclose(res["value"], ref, rtol=1e-6)


def test_sfid_fid_and_kid_share_one_pass(random_weights, inception_calls):
    from texbench.metrics.fid import FID
    from texbench.metrics.kid import KID

    calls = inception_calls
    xs, ys = _images(3, 3), _images(4, 3)
    fid = FID().compute_sets(xs, ys)["value"]
    sfid = SFID().compute_sets(xs, ys)["value"]
    KID.from_config({"subsets": 5}).compute_sets(xs, ys)
    assert sum(calls) == 6 and fid != sfid


def test_cli_score_sfid_and_registry(random_weights, tmp_path):
    from click.testing import CliRunner

    from texbench import registry
    from texbench.cli import main
    from texbench.imageio import save_png

    assert registry.metrics.get("sfid") is SFID
    for name, seed in (("a", 5), ("b", 6)):
        (tmp_path / name).mkdir()
        for i, img in enumerate(_images(seed, 3)):
            save_png(img, tmp_path / name / f"{i}.png")
    out = CliRunner().invoke(main, ["score", "sfid", str(tmp_path / "a"), str(tmp_path / "b"), "--json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout[out.stdout.index("{") :])  # stderr may hold the random-init warning
    assert result["metric"] == "sfid" and result["value"] > 0 and result["n_a"] == 3
