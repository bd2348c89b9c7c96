"""Copying measure: copy-fraction and copy-region."""

from __future__ import annotations

import pytest
import torch

from texbench import registry
from texbench.metrics.copying import copy_map, copying


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _exemplar(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(3, 68, 68, generator=g)
    return torch.nn.functional.avg_pool2d(noise[None], 3, stride=1, padding=0)[0, :, :64, :64]


def test_crop_of_the_exemplar_is_a_full_copy():
    ex = _exemplar()
    fraction, region = copying(ex[:, 5:53, 9:59], ex)
    assert fraction == 1.0 and region == 1.0
    # and survives 8-bit quantisation of a saved PNG
    q = (ex[:, 5:53, 9:59] * 255).round() / 255
    assert copying(q, ex) == (1.0, 1.0)


def test_white_noise_copies_nothing():
    ex = _exemplar()
    noise = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(5))
    fraction, region = copying(noise, ex)
    assert fraction < 0.01 and region < 0.01


def test_two_pieces_give_half_sized_regions():
    ex = _exemplar()
    out = torch.cat([ex[:, :48, :24], ex[:, 10:58, 30:54]], 2)  # (3, 48, 48): two copies, two offsets
    fraction, region = copying(out, ex, patch_size=8, stride=4)
    copied, offset, _, xs = copy_map(out, ex, patch_size=8, stride=4)
    # grid patches straddling the seam are not copies; the rest are
    straddling = ((xs < 24) & (xs + 8 > 24)).sum().item()
    assert fraction == pytest.approx(1 - straddling / xs.numel())
    assert region == pytest.approx(0.5)
    assert len({tuple(o) for o in offset[copied].tolist()}) == 2


def test_threshold_separates_near_copies():
    ex = _exemplar()
    crop = ex[:, :40, :40]
    g = torch.Generator().manual_seed(1)
    slight = (crop + 0.004 * torch.randn(crop.shape, generator=g)).clamp(0, 1)
    strong = (crop + 0.05 * torch.randn(crop.shape, generator=g)).clamp(0, 1)
    assert copying(slight, ex)[0] == 1.0
    assert copying(strong, ex)[0] == 0.0
    assert copying(slight, ex, threshold=0.001)[0] == 0.0


def test_metric_classes_batch_and_kind():
    frac_cls, reg_cls = registry.metrics.get("copy-fraction"), registry.metrics.get("copy-region")
    assert frac_cls.kind == reg_cls.kind == "unpaired"
    assert not frac_cls.higher_is_better and not reg_cls.higher_is_better
    ex = _exemplar()
    noise = torch.rand(3, 40, 40, generator=torch.Generator().manual_seed(2))
    x = torch.stack([ex[:, :40, :40], noise])
    f = frac_cls()(x, ex)
    r = reg_cls()(x, ex[None])
    assert f.dtype == torch.float64 and f.shape == (2,)
    assert f.tolist()[0] == 1.0 and f.tolist()[1] < 0.05
    assert r.tolist()[0] == 1.0 and r.tolist()[1] < 0.05
    # one exemplar per output gives the same values
    torch.testing.assert_close(frac_cls()(x, torch.stack([ex, ex])), f)


def test_bad_inputs_raise():
    metric = registry.metrics.get("copy-fraction")()
    with pytest.raises(ValueError, match="x must"):
        metric(torch.rand(3, 32, 32), torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match="smaller than patch_size"):
        copying(torch.rand(3, 4, 4), torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match="threshold"):
        registry.metrics.get("copy-region").from_config({"threshold": -1})


def test_texture_task_reports_copying():
    from texbench.tasks import get_task

    names = [m.metric for m in get_task("texture").default_metrics]
    assert "copy-fraction" in names and "copy-region" in names
