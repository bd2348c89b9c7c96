"""Shift-tolerant diversity between seeds (``lpips-aligned``): shifted copies of the exemplar are not
diverse, Gatys' samples from two seeds are, deterministic methods score 0."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import require_weights

from texbench.metrics.aligned_lpips import AlignedLPIPS, best_circular_shift, circular_align
from texbench.metrics.lpips import lpips
from texbench.nets.backbones import BACKBONE_SPECS
from texbench.nets.lpips import LIN_SPECS
from texbench.reports.leaderboard import leaderboard_markdown, leaderboard_tables
from texbench.runner import run_suite
from texbench.store import Store
from texbench.suite import load_suite
from texbench.tasks import get_task

PLUGINS = str(Path(__file__).with_name("plugins_probes.py"))


@pytest.fixture(autouse=True)
def _plugins():
    from texbench.registry import load_plugin_file

    load_plugin_file(PLUGINS)


@pytest.fixture
def lpips_weights():
    """Real LPIPS (alex) weights: any one of the interchangeable backbone copies, and the linear layers."""
    from texbench.weights import find_cached

    if not any(find_cached(spec) for spec in BACKBONE_SPECS["alex"]):
        pytest.skip("no AlexNet backbone for LPIPS cached: run `texbench weights fetch alexnet-torchvision`")
    require_weights(LIN_SPECS["alex"])


def _textures(size: int, n: int = 4) -> list[torch.Tensor]:
    """The quick suite's texture exemplars (builtin-textures, first ``n``), centre-cropped to ``size``."""
    from texbench.datasets.builtin import BuiltinTextures
    from texbench.tasks import center_crop_resize

    return [center_crop_resize(it.load(), size) for it in BuiltinTextures().items()[:n]]


@pytest.mark.parametrize("h,w", [(16, 16), (12, 20), (7, 9)])
def test_best_circular_shift_undoes_any_circular_shift(h, w):
    x = torch.rand(4, 3, h, w)
    shifts = [(0, 0), (1, w - 1), (h // 2, 3), (h - 1, w // 2)]
    y = torch.stack([torch.roll(xi, s, dims=(-2, -1)) for xi, s in zip(x, shifts)])
    torch.testing.assert_close(circular_align(x, y), x, rtol=0, atol=0)
    want = [((-a) % h, (-b) % w) for a, b in shifts]
    assert [tuple(s) for s in best_circular_shift(x, y).tolist()] == want


def test_best_circular_shift_is_the_least_squares_shift():
    """Brute force over every shift: the FFT answer minimises the squared difference."""
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(1, 3, 9, 11, generator=g), torch.rand(1, 3, 9, 11, generator=g)
    err = {(a, b): float(((x - torch.roll(y, (a, b), dims=(-2, -1))) ** 2).sum()) for a in range(9) for b in range(11)}
    assert tuple(best_circular_shift(x, y)[0].tolist()) == min(err, key=err.get)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        best_circular_shift(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))


def test_shifted_copies_score_zero_where_pixel_aligned_lpips_rates_them_diverse(lpips_weights):
    m = AlignedLPIPS()
    g = torch.Generator().manual_seed(0)
    for ex in _textures(128):
        a, b = (torch.roll(ex, tuple(int(v) for v in torch.randint(1, 128, (2,), generator=g)), dims=(-2, -1))
                for _ in range(2))
        assert float(m(a[None], b[None])[0]) < 1e-6
        assert float(lpips(a[None], b[None])[0]) > 0.1  # the pixel-aligned measure the shift games


def test_texture_and_style_tasks_score_diversity_shift_tolerantly():
    for task in ("texture", "style"):
        uses = [u for u in get_task(task).default_metrics if u.ref == "seeds"]
        assert [(u.metric, u.key) for u in uses] == [("lpips-aligned", "diversity")]


def test_diversity_of_shifts_is_zero_and_gatys_is_clearly_above(tmp_path, lpips_weights):
    """Acceptance (#13): over two of the quick suite's textures and two seeds (the acceptance run used all
    four; two keep the suite's time), the shifted exemplar scores ~0, a deterministic method exactly 0,
    Gatys clearly more, even after 10 evaluations."""
    from texbench.nets.vgg19 import VGG19_NORMALISED

    require_weights(VGG19_NORMALISED)
    p = tmp_path / "suite.toml"
    p.write_text("""
name = "diversity"
seeds = [0, 1]
[[task]]
name = "texture"
datasets = { exemplar = "builtin-textures" }
limit = 2
image_size = 64
params = { size = 64 }
metrics = [{ metric = "lpips-aligned", ref = "seeds", column = "diversity" },
           { metric = "lpips", ref = "seeds", column = "lpips-pixel-aligned" }]
set_metrics = []
methods = [
  { name = "shifted-exemplar" },
  { name = "exemplar-copy" },
  { name = "gatys", preset = "tiny", params = { max_evals = 10 }, label = "gatys" },
]
""")
    out = tmp_path / "run"
    run_suite(load_suite(str(p)), out, progress=False, plugin_files=[PLUGINS])
    with Store(out, readonly=True) as store:
        df = leaderboard_tables(store)["texture"]
        md = leaderboard_markdown(store)
    assert df.loc["shifted-exemplar", "diversity"] < 1e-6
    assert df.loc["exemplar-copy", "diversity"] == 0.0
    assert df.loc["gatys", "diversity"] > 0.1, df.loc["gatys", "diversity"]
    # the pixel-aligned measure is gamed: it rates the shifted copies as diverse
    assert df.loc["shifted-exemplar", "lpips-pixel-aligned"] > 0.1
    assert df.attrs["directions"]["diversity"] is True  # between seeds: more is more diverse
    assert "diversity ↑" in md and "circularly shifting" in md
