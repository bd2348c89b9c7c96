"""Single-level WCT (Li et al.): the transforms in closed form and the method's plumbing."""

from __future__ import annotations

import pytest
import torch

from texbench.synthesizers.wct import WCTRelu4, WCTRelu4Params, colour, wct, whiten
from texbench.tasks import TaskInput

CPU = torch.device("cpu")


def _features(c, n, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(c, c, generator=g, dtype=torch.float64)
    return (mix @ torch.rand(c, n, generator=g, dtype=torch.float64) * scale + 3.0).float()


def test_whitened_features_have_identity_covariance():
    f = _features(16, 900, 0, scale=7.0)
    w = whiten(f, eps=0.0)
    torch.testing.assert_close(w.mean(1), torch.zeros(16, dtype=w.dtype), atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.cov(w), torch.eye(16, dtype=w.dtype), atol=1e-4, rtol=0)


def test_code_eps_damps_the_whitening_in_closed_form():
    f = _features(8, 600, 1)
    centred = f.double() - f.double().mean(1, keepdim=True)
    vals, vecs = torch.linalg.eigh(torch.cov(centred))
    expect = vecs @ torch.diag(vals / (vals + 1.0)) @ vecs.T
    torch.testing.assert_close(torch.cov(whiten(f, eps=1.0)), expect, atol=1e-6, rtol=0)


def test_coloured_features_have_the_style_covariance_and_mean():
    content, style = _features(16, 900, 2, scale=4.0), _features(16, 700, 3, scale=0.5)
    out = colour(whiten(content, eps=0.0), style)
    s = style.double()
    torch.testing.assert_close(out.mean(1), s.mean(1), atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.cov(out), torch.cov(s), atol=1e-4, rtol=0)


def test_alpha_blends_with_the_content_features():
    c = _features(8, 64, 4).reshape(1, 8, 8, 8)
    s = _features(8, 80, 5).reshape(1, 8, 8, 10)
    torch.testing.assert_close(wct(c, s, alpha=0.0), c)
    full = wct(c, s, alpha=1.0)
    torch.testing.assert_close(wct(c, s, alpha=0.6), 0.6 * full + 0.4 * c, atol=1e-5, rtol=0)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="feat"):
        whiten(torch.zeros(3, 4, 4))
    with pytest.raises(ValueError, match="alpha"):
        WCTRelu4Params(alpha=1.5)
    with pytest.raises(ValueError, match="style_size"):
        WCTRelu4Params(style_size=4)


@pytest.mark.parametrize("size", [(16, 24), (37, 50)])
def test_method_output_has_the_content_size(monkeypatch, size):
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    g = torch.Generator().manual_seed(0)
    c, s = torch.rand(3, *size, generator=g), torch.rand(3, 40, 32, generator=g)
    inp = TaskInput("style", "x", size, content=c, style=s)
    out = WCTRelu4.from_config("tiny").run(inp, seed=0, device=CPU)
    assert out.shape == (3, *size) and out.min() >= 0 and out.max() <= 1
    other = WCTRelu4.from_config("tiny", {"alpha": 0.2}).run(inp, seed=0, device=CPU)
    assert not torch.allclose(out, other, atol=1e-4)
