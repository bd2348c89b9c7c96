"""The solid task (volumes), 3D Texture Networks on demand, and the Heeger–Bergen solid baseline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from texbench.cli import main as cli
from texbench.outputs import (
    CROSS_SLICES,
    VolumeKind,
    axis_slice,
    load_volume,
    scored_slices,
    volume_preview,
    volume_to_uint8,
)
from texbench.synthesizers.solid_classic import (
    HeegerBergenSolid,
    collapse_pyramid,
    histogram_match,
    laplacian_pyramid,
)
from texbench.synthesizers.solid_texture_networks import (
    SolidGenerator,
    TextureNetworks3D,
    coordinate_noise,
    generate,
    noise_windows,
)
from texbench.tasks import TaskInput, get_task

CPU = torch.device("cpu")
M64 = (1 << 64) - 1


def _smooth(size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, size // 4, size // 4, generator=g)
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)[0].clamp(0, 1)


# ------------------------------------------------------------------------------------------------ the noise
def _authors_noise(scale: int, x: int, y: int, z: int, ch: int) -> float:
    """The authors' sample_noise (CUDA kernels cellseed, wang_hash64, xorshift64star), in Python integers."""
    p = 65536
    seed = (scale % 5) * 5 * 3 * p * p + (ch % 3) * 3 * p * p + (z % p) * p * p + (y % p) * p + (x % p)
    seed = seed & M64 or 1
    key = seed
    key = ((~key) + (key << 21)) & M64
    key ^= key >> 24
    key = (key + (key << 3) + (key << 8)) & M64
    key ^= key >> 14
    key = (key + (key << 2) + (key << 4)) & M64
    key ^= key >> 28
    key = (key + (key << 31)) & M64
    key ^= key >> 12
    key = (key ^ (key << 25)) & M64
    key ^= key >> 27
    key = (key * 0x2545F4914F6CDD1D) & M64
    return float(np.float32(key) / np.float32(18446744073709551615.0))


def test_coordinate_noise_is_the_authors_hash():
    # with the authors' scale period (5) and seed 0, every value equals their kernels', negative coordinates too
    got = coordinate_noise(2, [(-3, 2), (7, 9), (65530, 65538)], 3, seed=0, scale_period=5)[0]
    for c in range(3):
        for i, x in enumerate(range(-3, 2)):
            for j, y in enumerate(range(7, 9)):
                for k, z in enumerate(range(65530, 65538)):
                    assert got[c, i, j, k].item() == _authors_noise(2, x, y, z, c)
    assert 0.45 < float(got.mean()) < 0.55
    other = coordinate_noise(2, [(-3, 2), (7, 9), (65530, 65538)], 3, seed=1, scale_period=5)[0]
    assert not torch.equal(got, other), "the job seed changes the noise"


def test_noise_windows_give_the_authors_margins():
    # sample_on_demand.py: margins 4, 5, 6, 6, 6, 4 voxels at scales 0..5 for blocks at multiples of 32
    for origin in (0, 32, 128):
        windows, offsets = noise_windows((origin, 0, 64), (64, 64, 64), 6)
        starts = [w[0][0] for w in windows]
        assert [(origin >> k) - s for k, s in enumerate(starts)] == [4, 5, 6, 6, 6, 4]
        assert all(v in (0, 1) for o in offsets for v in o)
    _, offsets = noise_windows((1, 2, 3), (8, 8, 8), 3)
    assert offsets[0] == [1, 0, 1]  # the parity shifts of odd origins


# ------------------------------------------------------------------------------------------------ on demand
def _random_generator(scales: int = 4) -> SolidGenerator:
    torch.manual_seed(3)
    gen = SolidGenerator(scales=scales, channels=4)
    for m in gen.modules():  # non-trivial batch-norm statistics, so every layer matters
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.05, 0.5)
    gen.to_rgb.weight.data.mul_(255)  # output on the [0, 1] scale's order of magnitude
    return gen.eval()


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_adjacent_blocks_equal_the_halves_of_one_larger_block(axis):
    gen = _random_generator()
    origin, size = [5, -7, 11], [12, 10, 14]
    whole = generate(gen, origin, size, seed=4, device=CPU)
    assert float(whole.std()) > 1e-3, "the test needs a volume that varies"
    cut = 5  # an odd cut: the two blocks see different crop parities
    first, second = list(size), list(size)
    first[axis], second[axis] = cut, size[axis] - cut
    o2 = list(origin)
    o2[axis] += cut
    a = generate(gen, origin, first, seed=4, device=CPU)
    b = generate(gen, o2, second, seed=4, device=CPU)
    torch.testing.assert_close(torch.cat([a, b], dim=axis + 1), whole, rtol=0, atol=1e-5)


def test_texture_networks_3d_trains_once_and_samples_on_demand(monkeypatch):
    p = {"scales": 3, "train_size": 16, "iterations": 2, "calibration_batches": 1, "style_layers": ("relu1_1",)}
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    m = TextureNetworks3D.from_config("tiny", p)
    inp = get_task("solid").build({"exemplar": _smooth(32, 0)}, item="c", params=get_task("solid").params({"size": 16})).input
    vol = m.run(inp, seed=0, device=CPU)
    assert vol.shape == (3, 16, 16, 16) and 0 <= float(vol.min()) and float(vol.max()) <= 1
    info = m.pop_info()
    assert info["train_cached"] is False and len(info["loss_curve"]) == 2
    # two adjacent blocks sampled separately are the halves of the whole (the method's public sampler)
    left = m.sample(inp, (0, 0, 0), (16, 16, 7), seed=0, device=CPU)
    right = m.sample(inp, (0, 0, 7), (16, 16, 9), seed=0, device=CPU)
    torch.testing.assert_close(torch.cat([left, right], dim=3), vol, rtol=0, atol=1e-5)
    # and far away, at a negative offset, any size
    assert m.sample(inp, (-100, 3, 40), (4, 5, 6), seed=0, device=CPU).shape == (3, 4, 5, 6)
    # a second instance loads the cached generator and gives the same volume
    again = TextureNetworks3D.from_config("tiny", p)
    torch.testing.assert_close(again.run(inp, seed=0, device=CPU), vol, rtol=0, atol=0)
    assert again.pop_info()["train_cached"] is True
    assert not torch.equal(again.run(inp, seed=1, device=CPU), vol)
    with pytest.raises(ValueError, match="origin and size"):
        m.sample(inp, (0, 0), (4, 4, 4), seed=0, device=CPU)


# ------------------------------------------------------------------------------------------- the baseline
def test_laplacian_pyramid_is_inverted_exactly_in_2d_and_3d():
    for shape, periodic in (((13, 17), False), ((9, 12, 10), True)):
        x = torch.rand(shape, dtype=torch.float64)
        bands = laplacian_pyramid(x, 3, periodic=periodic)
        assert len(bands) == 3 and bands[-1].shape == tuple((s + 3) // 4 for s in shape)
        torch.testing.assert_close(collapse_pyramid(bands, periodic=periodic), x, rtol=0, atol=1e-12)


def test_histogram_match_gives_the_target_distribution():
    x = torch.randn(1000, dtype=torch.float64)
    t = torch.rand(1000, dtype=torch.float64).sort().values
    y = histogram_match(x, t)
    torch.testing.assert_close(y.sort().values, t)
    assert torch.equal(torch.argsort(y), torch.argsort(x)), "ranks are kept"


def test_heeger_bergen_solid_matches_the_exemplar_colours():
    ex = _smooth(48, 1)
    inp = TaskInput("solid", "c", (16, 16, 16), image=ex)
    vol = HeegerBergenSolid.from_config("tiny").run(inp, seed=0, device=CPU)
    assert vol.shape == (3, 16, 16, 16)
    torch.testing.assert_close(vol.mean(dim=(1, 2, 3)), ex.mean(dim=(1, 2)), rtol=0, atol=0.03)
    with pytest.raises(ValueError, match="one exemplar"):
        HeegerBergenSolid().run(TaskInput("solid", "c", (8, 8, 8), image=ex, exemplars=(ex, ex, ex)), seed=0,
                                device=CPU)


# ------------------------------------------------------------------------------------- the volume output kind
def test_volume_round_trip_preview_and_slices(tmp_path):
    vol = torch.rand(3, 6, 7, 8)
    arr = volume_to_uint8(vol)
    assert arr.shape == (6, 7, 8, 3) and arr.dtype == np.uint8
    path = tmp_path / "v.npy"
    path.write_bytes(VolumeKind().encode(arr))
    back = load_volume(path)
    torch.testing.assert_close(back, vol, rtol=0, atol=0.5 / 255 + 1e-6)
    assert axis_slice(back, 1, 2).shape == (3, 6, 8)
    assert volume_preview(arr).shape == (16, 24, 3)
    assert scored_slices(8, 4) == [1, 3, 5, 7] and scored_slices(3, 4) == [0, 1, 2]
    np.save(tmp_path / "bad.npy", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8 \\(D, H, W, 3\\)"):
        load_volume(tmp_path / "bad.npy")


class _MeanGap:
    """A stand-in metric: |mean(x) − mean(y)| per image, recording the shapes it sees."""

    device = CPU

    def __init__(self):
        self.calls = []

    def __call__(self, x, y):
        self.calls.append((tuple(x.shape), tuple(y.shape)))
        return (x.mean(dim=(1, 2, 3)) - y.mean(dim=(1, 2, 3))).abs()


def test_volume_scores_average_slices_of_three_axes_each_against_its_exemplar():
    # values on the 8-bit grid (references are quantised before scoring)
    q = 64 / 255
    vol = torch.full((3, 8, 8, 8), q)
    refs = {"exemplar": torch.full((3, 5, 5), q)}
    metric = _MeanGap()
    assert VolumeKind().score(metric, vol, refs, "exemplar") == pytest.approx(0.0, abs=1e-7)
    assert metric.calls[0] == ((4, 3, 8, 8), (4, 3, 5, 5)), "one batch per axis"
    # a ramp along axis 0: its axis-0 slices are constant i·8/255, its axis-1 and axis-2 slices all have mean
    # 28/255; per-axis exemplars 0, 28/255, 28/255 leave only axis 0's gaps, a third of the average
    ramp = (torch.arange(8) * 8 / 255).view(1, 8, 1, 1).expand(3, 8, 8, 8).contiguous()
    refs3 = {"exemplar": torch.zeros(3, 5, 5), "exemplar:1": torch.full((3, 5, 5), 28 / 255),
             "exemplar:2": torch.full((3, 5, 5), 28 / 255)}
    axis0 = np.mean([float(ramp[0, i].mean()) for i in scored_slices(8)])
    assert VolumeKind().score(_MeanGap(), ramp, refs3, "exemplar") == pytest.approx(axis0 / 3, abs=1e-6)
    cross = _MeanGap()
    VolumeKind().score(cross, ramp, refs, CROSS_SLICES)
    assert cross.calls == [((4, 3, 8, 8), (4, 3, 8, 8))] * 3, "three axis pairs, four slice positions each"


# ------------------------------------------------------------------------------------------------ CLI & suite
def _exemplar_file(tmp_path, shared_dir) -> str:
    if shared_dir is not None and (shared_dir / "textures" / "pebbles.jpg").is_file():
        return str(shared_dir / "textures" / "pebbles.jpg")
    from texbench.datasets.builtin import procedural_texture
    from texbench.imageio import save_png

    path = tmp_path / "exemplar.png"
    save_png(procedural_texture("cells", 64), path)
    return str(path)


def test_synth_writes_a_volume(tmp_path, monkeypatch):
    from conftest import shared_data_dir

    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    src = _exemplar_file(tmp_path, shared_data_dir())
    out = tmp_path / "vol.npy"
    r = CliRunner().invoke(cli, ["synth", "texture-networks-3d", "--task", "solid", "--input", src, "--size", "16",
                                 "-o", str(out), "--preset", "tiny", "--param", "iterations=2",
                                 "--param", "train_size=16"])
    assert r.exit_code == 0, r.output
    assert np.load(out).shape == (16, 16, 16, 3) and "16x16x16" in r.output
    r = CliRunner().invoke(cli, ["synth", "heeger-bergen-solid", "--task", "solid", "--input", src, "--size", "16",
                                 "-o", str(tmp_path / "vol.png")])
    assert r.exit_code != 0 and "-o" in r.output and ".npy" in r.output
    r = CliRunner().invoke(cli, ["synth", "random-phase", "--task", "texture", "--input", src, "--input", src,
                                 "-o", str(tmp_path / "t.png")])
    assert r.exit_code != 0 and "--input" in r.output and "one" in r.output
    r = CliRunner().invoke(cli, ["synth", "heeger-bergen-solid", "--task", "solid", "--input", src, "--input", src,
                                 "-o", str(out)])
    assert r.exit_code != 0 and "three" in r.output


def test_solid_suite_writes_leaderboard_and_slice_grids(tmp_path):
    from texbench.runner import run_suite
    from texbench.suite import load_suite

    suite = tmp_path / "solid.toml"
    suite.write_text(
        'name = "solid-test"\nseeds = [0]\ndevice = "cpu"\nallow_random_init = true\n\n[[task]]\nname = "solid"\n'
        'datasets = { exemplar = "builtin-textures" }\nlimit = 1\nimage_size = 36\nparams = { size = 36 }\n'
        'methods = [ { name = "heeger-bergen-solid", preset = "tiny" }, { name = "texture-networks-3d", preset = "tiny",'
        ' params = { iterations = 1, train_size = 16, scales = 3, style_layers = ["relu1_1"] } } ]\n')
    out = tmp_path / "run"
    summary = run_suite(load_suite(str(suite)), out, progress=False)
    assert summary.failed == 0
    board = (out / "leaderboard.md").read_text()
    assert "heeger-bergen-solid" in board and "texture-networks-3d" in board
    assert (out / "grid_solid.png").is_file()
    html = (out / "report.html").read_text()
    assert ".slices.png" in html and ".npy" in html
    from texbench.store import Store

    with Store(out, create=False) as store:
        outputs = store.ok_outputs()
        scores = store.scores_frame()
    assert len(outputs) == 2 and all(p.endswith(".npy") for p in outputs.values())
    assert scores["value"].notna().all(), json.dumps(scores.to_dict("records"), default=str)[:500]
