"""Task ``jpeg``: Pillow compression at a stated quality; DIP's JPEG network, the identity baseline, NL-means."""

from __future__ import annotations

import io
import json
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from texbench import registry
from texbench.runner import run_suite
from texbench.store import Store
from texbench.suite import SuiteError, load_suite
from texbench.synthesizers.dip import DIP
from texbench.tasks import get_task, jpeg_compress


def _photo(size: int = 64) -> torch.Tensor:
    from texbench.datasets.builtin import BuiltinClean

    img = BuiltinClean().items()[1].load()  # chelsea
    return torch.nn.functional.interpolate(img[None], size=(size, size), mode="area")[0]


def _psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((x - y) ** 2).mean()))


def test_compression_is_pillows_at_the_stated_quality():
    x = _photo()
    u8 = (x * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    for q in (10, 50):
        buf = io.BytesIO()
        Image.fromarray(u8).save(buf, "JPEG", quality=q)
        ref = np.asarray(Image.open(buf).convert("RGB"))
        got = (jpeg_compress(x, quality=q) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        assert np.array_equal(got, ref)
    assert _psnr(jpeg_compress(x, quality=10), x) < _psnr(jpeg_compress(x, quality=50), x) < 60
    with pytest.raises(ValueError, match="quality"):
        jpeg_compress(x, quality=0)
    with pytest.raises(ValueError, match="quality"):
        get_task("jpeg").params({"quality": 101})


def test_default_quality_is_that_of_dips_own_example(shared_data):
    """snail.jpg (DIP's JPEG example) holds exactly libjpeg's tables at quality 20, as Pillow writes them."""
    snail = Image.open(shared_data / "dip" / "denoising_snail.jpg")
    params = get_task("jpeg").params()
    assert (params.quality, params.subsampling) == (20, "4:2:0")
    buf = io.BytesIO()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(buf, "JPEG", quality=params.quality)
    ours = Image.open(buf)
    assert {k: list(v) for k, v in ours.quantization.items()} == {k: list(v) for k, v in snail.quantization.items()}


def test_identity_and_nl_means_on_the_compressed_image():
    task = get_task("jpeg")
    ex = task.build({"clean": _photo()}, item="chelsea", params=task.params({"quality": 10}))
    assert ex.input.degradation["quality"] == 10 and torch.equal(ex.references["clean"], _photo())
    ident = registry.synthesizers.get("identity").from_config().run(ex.input, seed=0, device="cpu")
    assert torch.equal(ident, ex.input.image)
    synth = registry.synthesizers.get("nl-means").from_config()
    nlm = synth.run(ex.input, seed=0, device="cpu")
    # the task carries no sigma: NL-means runs at the level estimated from the compressed image, and says so
    assert nlm.shape == ex.input.image.shape and "estimated_sigma" in synth.pop_info()
    with pytest.raises(ValueError, match="sr4"):
        registry.synthesizers.get("identity").from_config().run(
            get_task("sr4").build({"clean": _photo()}, item="c", params=get_task("sr4").params()).input,
            seed=0, device="cpu")


def test_dip_jpeg_network_is_the_notebooks():
    """The JPEG notebook's skip(3, 3, [8, 16, 32, 64, 128] down/up, skip [0, 0, 0, 4, 4]): 572,827
    parameters, as the official models/skip.py builds it (counted with the authors' code)."""
    dip = DIP.from_config("jpeg")
    net = dip.build_net(seed=0)
    assert sum(p.numel() for p in net.parameters()) == 572_827
    assert dip.params.resolved("jpeg") == {"iterations": 2400, "reg_noise_std": 1 / 30, "ema": 0.99,
                                           "backtrack_db": 5.0}
    with pytest.raises(ValueError, match="channels_per_scale"):
        DIP.from_config(None, {"channels_per_scale": [8, 16]}).build_net(seed=0)


def test_tiny_jpeg_suite_runs_and_stores_the_quality(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(textwrap.dedent("""
        name = "jpeg-tiny"
        device = "cpu"
        [[task]]
        name = "jpeg"
        datasets = { clean = "builtin-clean" }
        limit = 1
        image_size = 64
        params = { quality = 10 }
        set_metrics = []   # FID over one image says nothing and costs an Inception pass
        methods = [
          { name = "identity" },
          { name = "nl-means", preset = "tiny" },
          { name = "dip", preset = "tiny", params = { iterations = 60 } },
        ]
    """))
    out = tmp_path / "run"
    s = run_suite(load_suite(str(p)), out, progress=False)
    assert (s.ran, s.failed) == (3, 0)
    with Store(out, create=False) as st:
        jobs = st.jobs_frame()
    assert all(json.loads(tp)["quality"] == 10 for tp in jobs["task_params"])
    csv = pd.read_csv(out / "leaderboard.csv")
    assert set(csv["label"]) == {"identity", "nl-means[tiny]", "dip[tiny]"}
    assert {"psnr", "ssim", "lpips"} <= set(csv.columns)
    bad = tmp_path / "bad.toml"
    bad.write_text(p.read_text().replace("quality = 10", "quality = 0"))
    with pytest.raises(SuiteError, match="quality"):
        load_suite(str(bad))
