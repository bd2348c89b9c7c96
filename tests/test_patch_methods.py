"""Classic patch-based synthesizers: Efros-Leung, image quilting (+ transfer), Kwatra, semi-discrete patch OT."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from texbench import registry
from texbench.tasks import TaskInput

TEXTURE_METHODS = ("efros-leung", "quilting", "kwatra", "patch-ot")


@pytest.fixture(autouse=True)
def _one_thread():
    # the per-step products are small; OpenMP spin-waiting makes them crawl on a shared 2-core machine
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _exemplar(size: int = 64, seed: int = 0) -> torch.Tensor:
    """A structured 64×64 colour texture: blurred noise plus oriented stripes, in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(3, size + 4, size + 4, generator=g)
    k = torch.ones(3, 1, 5, 5) / 25
    blur = torch.nn.functional.conv2d(noise[None], k, groups=3)[0]
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    stripes = 0.5 + 0.5 * torch.sin((xx + 0.5 * yy) * 0.6)
    return (0.5 * blur + 0.5 * stripes).clamp(0, 1)


def _periodic(period: int = 8, reps: int = 8, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    tile = torch.rand(3, period, period, generator=torch.Generator().manual_seed(seed))
    return tile, tile.repeat(1, reps, reps)


def _continuation_error(out: torch.Tensor, tile: torch.Tensor) -> float:
    """Mean squared difference to the best-aligned periodic extension of ``tile``."""
    p = tile.shape[-1]
    h, w = out.shape[-2:]
    big = tile.repeat(1, h // p + 2, w // p + 2)
    return min(
        float(((out - big[:, dy : dy + h, dx : dx + w]) ** 2).mean()) for dy in range(p) for dx in range(p)
    )


def _texture_input(size, exemplar=None):
    return TaskInput("texture", "test", size, image=_exemplar() if exemplar is None else exemplar)


# -------------------------------------------------------------------------------------------- contracts
@pytest.mark.parametrize("name", TEXTURE_METHODS)
@pytest.mark.parametrize("size", [(40, 48), (96, 80)], ids=["smaller", "larger"])
def test_texture_size_range_determinism(name, size):
    cls = registry.synthesizers.get(name)
    assert "texture" in cls.tasks
    method = cls.from_config("tiny")
    inp = _texture_input(size)
    a = method.run(inp, seed=3, device=torch.device("cpu"))
    b = cls.from_config("tiny").run(inp, seed=3, device=torch.device("cpu"))
    assert a.shape == (3, *size) and a.dtype == torch.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b), "same seed must give the same output"
    c = method.run(inp, seed=4, device=torch.device("cpu"))
    assert not torch.equal(a, c), "another seed should give another output"


@pytest.mark.parametrize("name", TEXTURE_METHODS + ("quilting-transfer",))
def test_params_are_checked(name):
    cls = registry.synthesizers.get(name)
    with pytest.raises(ValueError, match="unknown parameter"):
        cls.from_config(overrides={"no_such_parameter": 1})
    field = next(iter(cls.Params.__dataclass_fields__))
    with pytest.raises(ValueError):
        cls.from_config(overrides={field: -5})


def test_missing_exemplar_is_a_clear_error():
    with pytest.raises(ValueError, match="exemplar"):
        registry.synthesizers.get("quilting").from_config("tiny").run(
            TaskInput("texture", "x", (32, 32)), seed=0, device=torch.device("cpu")
        )


def test_quilting_transfer_style_task():
    cls = registry.synthesizers.get("quilting-transfer")
    assert cls.tasks == ("style",)
    content = _exemplar(seed=5)[:, :40, :56]
    inp = TaskInput("style", "c+s", (40, 56), content=content, style=_exemplar(seed=6))
    a = cls.from_config("tiny").run(inp, seed=0, device=torch.device("cpu"))
    b = cls.from_config("tiny").run(inp, seed=0, device=torch.device("cpu"))
    assert a.shape == (3, 40, 56) and torch.equal(a, b)
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    # the correspondence term makes the result follow the content's luminance
    from texbench.ops.color import luminance

    lum_a, lum_c = luminance(a).flatten(), luminance(content).flatten()
    assert float(torch.corrcoef(torch.stack([lum_a, lum_c]))[0, 1]) > 0.3


# ------------------------------------------------------------------------------------------------ quilting
def _path_cost(err, path):
    return sum(err[i, c] for i, c in enumerate(path))


@pytest.mark.parametrize("seed", range(5))
def test_boundary_cut_is_minimal_against_brute_force(seed):
    from texbench.synthesizers.quilting import min_error_boundary_cut

    rng = np.random.default_rng(seed)
    h, w = 6, 3
    err = rng.random((h, w))
    path = min_error_boundary_cut(err)
    assert path.shape == (h,) and path.min() >= 0 and path.max() < w
    assert np.all(np.abs(np.diff(path)) <= 1)
    best = min(
        _path_cost(err, p)
        for p in itertools.product(range(w), repeat=h)
        if all(abs(a - b) <= 1 for a, b in zip(p[:-1], p[1:], strict=True))
    )
    assert _path_cost(err, path) == pytest.approx(best, abs=1e-12)


@pytest.mark.parametrize("left,top", [(True, False), (False, True), (True, True)])
def test_boundary_cut_stays_inside_the_overlap(left, top):
    from texbench.synthesizers.quilting import boundary_cut_mask

    g = torch.Generator().manual_seed(0)
    block, ov = 12, 3
    old, new = torch.rand(3, block, block, generator=g), torch.rand(3, block, block, generator=g)
    mask = boundary_cut_mask(old, new, ov, left=left, top=top)
    outside = torch.ones(block, block, dtype=torch.bool)
    if left:
        outside[:, :ov] = False
    if top:
        outside[:ov, :] = False
    assert bool(mask[outside].all()), "the cut must not leave the overlap"
    # each row (vertical cut) switches from old to new exactly once, inside the overlap
    if left and not top:
        for row in mask:
            first = int(row.float().argmax())
            assert first < ov and bool(row[first:].all()) and not bool(row[:first].any())


def test_overlap_error_matches_the_naive_loop():
    from texbench.synthesizers.quilting import NaiveOverlapError, OverlapError, _strips

    g = torch.Generator().manual_seed(0)
    ex = torch.rand(3, 30, 26, generator=g)
    target = torch.rand(3, 10, 10, generator=g)
    for left, top in [(True, False), (False, True), (True, True)]:
        regions = _strips(10, 2, left, top)
        fast = OverlapError(ex)(target, regions, 10)
        ref = NaiveOverlapError(ex)(target, regions, 10)
        assert fast.shape == (21, 17)
        torch.testing.assert_close(fast, ref, rtol=0, atol=1e-9)


def test_quilting_continues_a_periodic_texture():
    from texbench.synthesizers.quilting import QuiltingParams, quilt

    tile, ex = _periodic()
    out = quilt(ex, (88, 80), QuiltingParams(patch_size=16), generator=torch.Generator().manual_seed(2))
    assert out.shape == (3, 88, 80)
    assert _continuation_error(out, tile) < 1e-10
    # control: a random rearrangement of the exemplar is not a continuation
    assert _continuation_error(torch.rand(3, 88, 80), tile) > 1e-2


# -------------------------------------------------------------------------------------------- efros-leung
def test_efros_leung_continues_a_periodic_texture():
    from texbench.synthesizers.efros_leung import EfrosLeungParams, grow_texture

    tile, ex = _periodic()
    out = grow_texture(
        ex, (72, 80), EfrosLeungParams(window_size=7), generator=torch.Generator().manual_seed(2)
    )
    assert out.shape == (3, 72, 80)
    assert _continuation_error(out, tile) < 1e-10


def test_efros_leung_copies_exemplar_values():
    from texbench.synthesizers.efros_leung import EfrosLeungParams, grow_texture

    ex = _exemplar()
    out = grow_texture(
        ex, (24, 24), EfrosLeungParams(window_size=5), generator=torch.Generator().manual_seed(0)
    )
    colours = {tuple(v) for v in ex.reshape(3, -1).T.tolist()}
    assert all(tuple(v) in colours for v in out.reshape(3, -1).T.tolist()), "every pixel is an exemplar pixel"


# ------------------------------------------------------------------------------------------------- kwatra
def test_kwatra_energy_decreases_and_patch_index_is_exact():
    from texbench.ops.patches import PatchIndex, extract_patches
    from texbench.synthesizers.kwatra import KwatraParams, texture_optimization

    out, log = texture_optimization(
        _exemplar(),
        (48, 48),
        KwatraParams(levels=1, patch_sizes=(8,), iterations=4),
        generator=torch.Generator().manual_seed(0),
    )
    energy = log[0]["energy"]
    assert energy[-1] < energy[0]
    g = torch.Generator().manual_seed(1)
    img, q = torch.rand(3, 20, 17, generator=g), torch.rand(9, 3 * 16, generator=g)
    d2, idx = PatchIndex(img, 4, chunk_values=200).search(q)  # many small bands
    ref = torch.cdist(q.double(), extract_patches(img, 4).double()) ** 2
    assert torch.equal(idx, ref.argmin(1))
    torch.testing.assert_close(d2.double(), ref.min(1).values, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------------------------ patch-ot
def test_semi_discrete_potentials_balance_the_assignment():
    """With the learned potentials every target gets close to its 1/J share; plain NN starves many."""
    from texbench.synthesizers.patch_ot import learn_dual_potentials, ot_assign

    g = torch.Generator().manual_seed(0)
    targets = torch.rand(50, 4, generator=g)
    sources = 0.5 + 0.15 * torch.randn(20000, 4, generator=g)  # concentrated in the middle
    v, _ = learn_dual_potentials(sources, targets, iterations=1500, batch_size=64, step_size=2.0, generator=g)
    test = 0.5 + 0.15 * torch.randn(20000, 4, generator=g)
    share_ot = torch.bincount(ot_assign(test, targets, v), minlength=50).double() / test.shape[0]
    share_nn = (
        torch.bincount(ot_assign(test, targets, torch.zeros(50)), minlength=50).double() / test.shape[0]
    )
    tv_ot = float((share_ot - 1 / 50).abs().sum() / 2)
    tv_nn = float((share_nn - 1 / 50).abs().sum() / 2)
    assert tv_ot < 0.1 and tv_ot < 0.4 * tv_nn, (tv_ot, tv_nn)


def test_adsn_has_the_exemplar_mean_and_is_seeded():
    from texbench.synthesizers.patch_ot import adsn

    ex = _exemplar()
    a = adsn(ex, (96, 80), generator=torch.Generator().manual_seed(0))
    b = adsn(ex, (96, 80), generator=torch.Generator().manual_seed(0))
    assert a.shape == (3, 96, 80) and torch.equal(a, b)
    torch.testing.assert_close(a.mean((1, 2)), ex.mean((1, 2)), atol=0.05, rtol=0)
