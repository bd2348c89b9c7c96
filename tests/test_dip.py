"""Deep Image Prior and the classic restoration baselines (BM3D, Lanczos); the inpaint task."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from texbench import tasks
from texbench.synthesizers.dip import DIP, DIPParams, SkipNet, forward_operator
from texbench.synthesizers.restoration import BM3D, Lanczos, lanczos_matrix, lanczos_resize


@pytest.fixture(autouse=True)
def _one_thread():
    # the CI machine has 2 shared cores: one thread avoids oversubscription and keeps timings stable
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _builtin(name: str, size: int) -> torch.Tensor:
    from skimage import data

    img = torch.from_numpy(getattr(data, name)()).permute(2, 0, 1).float() / 255.0
    return tasks.center_crop_resize(img, size)


def _psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    return float(-10.0 * torch.log10(torch.mean((x.double() - y.double()) ** 2)))


def _example(task: str, clean: torch.Tensor, **params) -> tasks.Example:
    t = tasks.get_task(task)
    return t.build({"clean": clean}, item="test", params=t.params(params))


# -------------------------------------------------------------------------------------------------- DIP
@pytest.mark.slow
def test_dip_denoise_gains_3db_over_noisy_input():
    clean = _builtin("chelsea", 64)
    ex = _example("denoise", clean, sigma=25.0)
    dip = DIP.from_config("tiny")
    out = dip.run(ex.input, seed=0, device="cpu", reference=clean)
    assert out.shape == (3, 64, 64) and out.dtype == torch.float32
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    noisy_psnr, out_psnr = _psnr(ex.input.image, clean), _psnr(out, clean)
    assert out_psnr >= noisy_psnr + 3.0, (noisy_psnr, out_psnr)
    info = dip.pop_info()
    n = DIP.presets["tiny"]["iterations"]
    assert info["iterations"] == n and len(info["loss"]) == n
    assert len(info["psnr"]) == n and len(info["psnr_ema"]) == n
    # the returned image is the exponential average, whose PSNR is the last point of its curve
    assert info["psnr_ema"][-1] == pytest.approx(out_psnr, abs=1e-3)
    assert np.mean(info["loss"][-20:]) < np.mean(info["loss"][:20])


def test_sr_forward_operator_is_the_task_downsampler():
    hr_src = _builtin("astronaut", 66)  # not a multiple of 4: the task modcrops to 64x64
    ex = _example("sr4", hr_src)
    hr = ex.references["clean"]
    assert tuple(hr.shape) == (3, 64, 64) and ex.input.size == (64, 64)
    phi = forward_operator(ex.input)
    assert torch.equal(phi(hr[None])[0], ex.input.image)
    assert torch.equal(phi(hr[None])[0], tasks.downsample(hr, 4))


def test_sr_loss_calls_the_task_downsampler(monkeypatch):
    ex = _example("sr4", _builtin("astronaut", 64))
    calls = []
    original = tasks.downsample

    def counting(x, factor=4):
        calls.append((tuple(x.shape), factor))
        return original(x, factor)

    monkeypatch.setattr(tasks, "downsample", counting)
    out = DIP.from_config("tiny", {"iterations": 3}).run(ex.input, seed=0, device="cpu")
    assert out.shape == (3, 64, 64)
    assert calls == [((1, 3, 64, 64), 4)] * 3


def test_same_seed_same_output_and_seed_matters():
    ex = _example("denoise", _builtin("chelsea", 32))
    dip = DIP.from_config("tiny", {"iterations": 15})
    a = dip.run(ex.input, seed=3, device="cpu")
    b = dip.run(ex.input, seed=3, device="cpu")
    c = dip.run(ex.input, seed=4, device="cpu")
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("size", [(40, 56), (37, 45)])
def test_any_size_runs_on_a_padded_canvas(size):
    clean = torch.rand(3, *size, generator=torch.Generator().manual_seed(0))
    ex = _example("denoise", clean)
    out = DIP.from_config("tiny", {"iterations": 2}).run(ex.input, seed=0, device="cpu")
    assert out.shape == (3, *size)


def test_upsample_modes_build_different_networks():
    z = torch.rand(1, 8, 32, 32, generator=torch.Generator().manual_seed(0))
    outs = {}
    for mode in ("bilinear", "nearest", "deconv"):
        p = DIP.from_config("tiny", {"upsample": mode}).params
        torch.manual_seed(0)
        net = SkipNet(p)
        n_deconv = sum(isinstance(m, torch.nn.ConvTranspose2d) for m in net.modules())
        n_up = sum(isinstance(m, torch.nn.Upsample) and m.mode == mode for m in net.modules())
        assert (n_deconv if mode == "deconv" else n_up) == p.depth
        outs[mode] = net(z)
        assert outs[mode].shape == (1, 3, 32, 32)
    assert not torch.allclose(outs["bilinear"], outs["nearest"])


def test_skip_channels_zero_removes_skip_connections():
    with_skip = SkipNet(DIP.from_config("tiny").params)
    without = SkipNet(DIP.from_config("tiny", {"channels_skip": 0}).params)
    n_params = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    assert n_params(without) < n_params(with_skip)
    assert without(torch.rand(1, 8, 16, 16)).shape == (1, 3, 16, 16)


def test_task_defaults_follow_the_paper():
    p = DIPParams()
    assert p.resolved("denoise") == {
        "iterations": 1800,
        "reg_noise_std": 1 / 30,
        "ema": 0.99,
        "backtrack_db": 5.0,
    }
    assert p.resolved("sr4")["iterations"] == 2000 and p.resolved("sr4")["reg_noise_std"] == 0.03
    assert p.resolved("sr4")["ema"] == 0.0
    assert DIPParams(iterations=7).resolved("sr4")["iterations"] == 7


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="ema"):
        DIPParams(ema=1.0)
    with pytest.raises(ValueError, match="upsample"):
        DIP.from_config(None, {"upsample": "cubic"})
    style = tasks.TaskInput("style", "x", (8, 8), content=torch.rand(3, 8, 8), style=torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="task"):
        DIP.from_config("tiny").run(style, seed=0, device="cpu")
    ex = _example("denoise", torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match="reference"):
        DIP.from_config("tiny", {"iterations": 1}).run(
            ex.input, seed=0, device="cpu", reference=torch.rand(3, 8, 8)
        )


# ----------------------------------------------------------------------------------------------- inpaint
def test_inpaint_masks():
    clean = _builtin("chelsea", 64)
    ex = _example("inpaint", clean, mask="random", missing=0.5)
    m = ex.input.mask
    assert m.shape == (1, 64, 64) and set(torch.unique(m).tolist()) <= {0.0, 1.0}
    assert 0.4 < float(1 - m.mean()) < 0.6
    assert torch.equal(ex.input.image, clean * m)
    region = _example("inpaint", clean, mask="region", missing=0.25).input.mask
    assert int((region == 0).sum()) == 32 * 32
    rows, cols = torch.nonzero(region[0] == 0, as_tuple=True)
    assert int(rows.max() - rows.min()) == 31 and int(cols.max() - cols.min()) == 31  # one rectangle
    # the same image gives the same mask (every method sees the same input)
    assert torch.equal(_example("inpaint", clean).input.mask, m)
    with pytest.raises(ValueError, match="missing"):
        tasks.get_task("inpaint").params({"missing": 1.5})


def test_dip_inpaint_fits_known_pixels_only():
    clean = _builtin("chelsea", 32)
    ex = _example("inpaint", clean, mask="region", missing=0.25)
    phi = forward_operator(ex.input)
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(phi(x)[0] * (1 - ex.input.mask), torch.zeros(3, 32, 32))
    out = DIP.from_config("tiny", {"iterations": 3}).run(ex.input, seed=0, device="cpu")
    assert out.shape == (3, 32, 32)


# ------------------------------------------------------------------------------------------------ Lanczos
def test_lanczos_matches_pillow():
    from PIL import Image

    x = torch.rand(3, 16, 12, generator=torch.Generator().manual_seed(0))
    unclipped = lanczos_matrix(16, 64) @ x.double() @ lanczos_matrix(12, 48).T
    ref = np.stack(
        [
            np.asarray(Image.fromarray(x[c].numpy(), mode="F").resize((48, 64), Image.LANCZOS))
            for c in range(3)
        ]
    )
    np.testing.assert_allclose(unclipped.numpy(), ref, atol=1e-6)


def test_lanczos_synthesizer_contract():
    ex = _example("sr4", _builtin("astronaut", 64))
    out = Lanczos().run(ex.input, seed=0, device="cpu")
    assert out.shape == (3, 64, 64) and 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    const = lanczos_resize(torch.full((3, 4, 5), 0.3), (16, 20))
    torch.testing.assert_close(const, torch.full((3, 16, 20), 0.3))
    # a better reconstruction than nearest-neighbour up-sampling
    nearest = torch.nn.functional.interpolate(ex.input.image[None], scale_factor=4, mode="nearest")[0]
    assert _psnr(out, ex.references["clean"]) > _psnr(nearest, ex.references["clean"])


# --------------------------------------------------------------------------------------------------- BM3D
def test_bm3d_denoises():
    pytest.importorskip("bm3d", reason="bm3d (optional, non-commercial licence) is not installed")
    clean = _builtin("chelsea", 64)
    ex = _example("denoise", clean, sigma=25.0)
    out = BM3D().run(ex.input, seed=0, device="cpu")
    assert out.shape == (3, 64, 64) and out.dtype == torch.float32
    assert _psnr(out, clean) >= _psnr(ex.input.image, clean) + 3.0


def test_bm3d_takes_sigma_from_the_task(monkeypatch):
    bm3d = pytest.importorskip("bm3d", reason="bm3d (optional, non-commercial licence) is not installed")
    seen = []

    def stub(z, sigma_psd, profile="np", colorspace="opp"):
        seen.append((z.shape, sigma_psd, profile, colorspace))
        return z

    monkeypatch.setattr(bm3d, "bm3d_rgb", stub)
    ex = _example("denoise", _builtin("chelsea", 16), sigma=15.0)
    out = BM3D().run(ex.input, seed=0, device="cpu")
    torch.testing.assert_close(out, ex.input.image)
    BM3D(BM3D.Params(sigma=50.0, colorspace="YCbCr")).run(ex.input, seed=0, device="cpu")
    assert seen == [((16, 16, 3), 15.0 / 255.0, "np", "opp"), ((16, 16, 3), 50.0 / 255.0, "np", "YCbCr")]
    no_sigma = tasks.TaskInput("denoise", "x", (16, 16), image=ex.input.image)
    with pytest.raises(ValueError, match="sigma"):
        BM3D().run(no_sigma, seed=0, device="cpu")
