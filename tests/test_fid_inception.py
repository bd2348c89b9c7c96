"""The FID Inception network against pytorch-fid 0.3.0 and the TorchScript file, on identical weights.

Tolerances (issue 3): per-image features within 1e-4 absolute (pool3 and the 64/192 blocks), FID between
two sets of 64 real images within 1e-6 relative, TorchScript pool3 within 1e-4. Real-weight tests skip
when the file is not cached (``texbench weights fetch fid-inception``).

Cost control: per-image parity runs two images at the real 299x299 input. The FID-set parity runs 64 vs
64 real 80x80 crops at their own size (``resize="none"``, pytorch-fid's ``resize_input=False``): same
network, same statistics, a tenth of the compute; the 299x299 resize itself is checked per image.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import torch
from conftest import require_weights

from texbench.nets.inception import (
    FID_INCEPTION,
    FIDInceptionV3,
    preprocess,
    pytorch_fid_state_dict,
    random_state_dict,
    state_dict_from_torchscript,
)

CROP = 80


def _pytorch_fid_model(state_dict, blocks, resize_input=True):
    import pytorch_fid.inception as pfi

    # pytorch-fid downloads its weights in fid_inception_v3(); hand it ours instead
    with mock.patch.object(
        pfi, "load_state_dict_from_url", lambda *a, **k: pytorch_fid_state_dict(state_dict)
    ):
        return pfi.InceptionV3(list(blocks), resize_input=resize_input).eval()


def _ours(state_dict):
    net = FIDInceptionV3()
    net.load_state_dict(state_dict, strict=True)
    return net


@pytest.fixture(scope="module")
def real_state_dict():
    return state_dict_from_torchscript(require_weights(FID_INCEPTION))


@pytest.fixture(scope="module")
def real_crops():
    from conftest import shared_data_dir

    from texbench.imageio import load_image

    root = shared_data_dir()
    if root is None:
        pytest.skip("real test images not present (../shared/data)")
    files = sorted((root / "cbsd68").glob("*.png"))[:40] + sorted((root / "kodak24").glob("*.png"))
    crops = []
    for f in files:
        img = load_image(f)
        h, w = img.shape[-2:]
        for top, left in ((0, 0), (h - CROP, w - CROP)):  # two crops per image: 128 in all
            crops.append(img[:, top : top + CROP, left : left + CROP])
    crops = torch.stack(crops[:128])
    return crops[0::2], crops[1::2]  # 64 top-left crops vs 64 bottom-right crops


def _check_per_image(state_dict, images):
    ours = _ours(state_dict)(images, dims=(64, 192, 2048))
    with torch.no_grad():
        ref = _pytorch_fid_model(state_dict, (0, 1, 3))(images)
    for (dim, mine), theirs in zip(ours.items(), ref, strict=True):
        theirs = theirs.flatten(1) if dim == 2048 else theirs
        assert mine.shape == theirs.shape
        err = (mine - theirs).abs().max().item()
        assert err <= 1e-4, f"block {dim}: max abs difference {err:.3g}"
    return ours


def _exact_fid(f1, f2):
    """Reference FID for n < d, independent of texbench's code: Tr sqrt(Σ1Σ2) from the eigenvalues of
    the small Gram product, whose square roots are exact (no d x d square root)."""
    x, y = f1 - f1.mean(0), f2 - f2.mean(0)
    g = x @ y.T / np.sqrt((len(x) - 1) * (len(y) - 1))
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(g @ g.T), 0, None)).sum()
    diff = f1.mean(0) - f2.mean(0)
    return diff @ diff + (x * x).sum() / (len(x) - 1) + (y * y).sum() / (len(y) - 1) - 2 * tr_covmean


def _check_fid_sets(state_dict, a, b):
    from texbench.metrics.fid import frechet_distance_from_features

    net = _ours(state_dict)
    fa = net(a, resize="none")[2048].double().numpy()
    fb = net(b, resize="none")[2048].double().numpy()
    model = _pytorch_fid_model(state_dict, (3,), resize_input=False)
    with torch.no_grad():
        ra = model(a)[0].flatten(1).double().numpy()
        rb = model(b)[0].flatten(1).double().numpy()
    ref = _exact_fid(ra, rb)
    ours = frechet_distance_from_features(fa, fb)
    assert ours == pytest.approx(ref, rel=1e-6)
    assert ref > 1e-3  # two different sets: the comparison is not 0 == 0


# ----------------------------------------------------------------------------------------- random weights
def test_random_weights_match_pytorch_fid_per_image():
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    _check_per_image(random_state_dict(123), x)


def test_random_weights_fid_between_real_sets_matches(real_crops):
    _check_fid_sets(random_state_dict(7), *real_crops)


# ------------------------------------------------------------------------------------------- real weights
def test_real_weights_match_pytorch_fid_and_torchscript(real_state_dict):
    x = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    ours = _check_per_image(real_state_dict, x)
    ts = torch.jit.load(str(require_weights(FID_INCEPTION)), map_location="cpu")
    with torch.no_grad():
        ts_pool3 = ts(preprocess(x))  # the TorchScript network takes [-1, 1] input at 299x299
    assert (ours[2048] - ts_pool3).abs().max().item() <= 1e-4


def test_real_weights_fid_between_real_sets_matches(real_state_dict, real_crops):
    _check_fid_sets(real_state_dict, *real_crops)


# -------------------------------------------------------------------------------------- properties, options
def test_results_do_not_depend_on_batch_size(real_crops):
    net = _ours(random_state_dict(3))
    x = real_crops[0][:8]
    whole = net(x, dims=(64, 2048), resize="none")
    single = [net(x[i : i + 1], dims=(64, 2048), resize="none") for i in range(len(x))]
    for d in (64, 2048):
        # oneDNN picks per-batch-size kernels: equal up to float32 summation order
        torch.testing.assert_close(whole[d], torch.cat([s[d] for s in single]), rtol=0, atol=1e-5)


def test_resize_modes_do_what_they_say():
    from PIL import Image

    x = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(2))
    bilinear = preprocess(x, "pytorch-fid")
    clean = preprocess(x, "clean")
    assert bilinear.shape == clean.shape == (1, 3, 299, 299)
    expected = torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    torch.testing.assert_close(bilinear, 2 * expected - 1, rtol=0, atol=0)
    # clean-fid's clean mode: float bicubic per channel on 0..255, clipped, then (v - 128) / 128
    chan = Image.fromarray((x[0, 1].double() * 255).float().numpy(), mode="F").resize((299, 299), Image.BICUBIC)
    raw = np.asarray(chan)
    assert raw.min() < 0 or raw.max() > 255  # bicubic overshoots on this input, so the clip matters
    torch.testing.assert_close(clean[0, 1], (torch.from_numpy(raw.clip(0, 255)) - 128) / 128, rtol=0, atol=1e-6)
    assert (bilinear - clean).abs().max() > 1e-3  # the two modes really differ
    torch.testing.assert_close(preprocess(x, "none"), 2 * x - 1)


def test_forward_stops_at_the_deepest_requested_block(monkeypatch):
    net = _ours(random_state_dict(0))
    called = []
    for name in ("_mixed_a", "_mixed_e"):
        orig = getattr(FIDInceptionV3, name)
        monkeypatch.setattr(
            FIDInceptionV3,
            name,
            lambda self, *a, _o=orig, _n=name, **k: called.append(_n) or _o(self, *a, **k),
        )
    out = net(torch.rand(1, 3, 64, 64), dims=(64, 192), resize="none")
    assert set(out) == {64, 192} and called == []
    with pytest.raises(ValueError, match="dims"):
        net(torch.rand(1, 3, 64, 64), dims=(100,))
    with pytest.raises(ValueError, match="x must have shape"):
        net(torch.rand(3, 64, 64))


def test_weights_mapping_checks_shapes(tmp_path):
    # a TorchScript file with the wrong layout is refused with a WeightsError, not loaded loosely
    from texbench.weights import WeightsError

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("weight", torch.zeros(2, 3, 1, 1))

        def forward(self, x):
            return x

    path = tmp_path / "tiny.pt"
    torch.jit.script(Tiny()).save(str(path))
    with pytest.raises(WeightsError):
        state_dict_from_torchscript(path)
