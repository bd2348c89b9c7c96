"""Colour conversions: luma for the SR metrics, luminance for the patch methods, YIQ for colour-preserving
style transfer.

Three conventions of the field, each where its users expect it (they are not interchangeable):

* :func:`rgb_to_y`: ITU-R BT.601 luma with MATLAB ``rgb2ycbcr``'s studio swing (16-235), the Y channel
  on which SR papers report PSNR and SSIM;
* :func:`luminance`: BT.601 luma on the full [0, 1] range (``0.299 R + 0.587 G + 0.114 B``), the grey
  level of Efros & Freeman's texture transfer;
* :func:`rgb_to_yiq` / :func:`yiq_to_rgb`: NTSC YIQ (the same luma as the first channel), the colour
  space of Gatys et al.'s luminance-only transfer;
* :func:`match_color`: the linear colour transfer (mean and covariance of RGB) that AdaIN's colour
  preservation applies to the style image.
"""

from __future__ import annotations

import torch

__all__ = ["YIQ", "luminance", "match_color", "rgb_to_y", "rgb_to_yiq", "yiq_to_rgb"]

#: RGB → YIQ (NTSC), rows Y, I, Q
YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_LUMA_BT601 = (0.299, 0.587, 0.114)


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """Luma Y of ITU-R BT.601 as MATLAB's ``rgb2ycbcr`` computes it, the convention of SR papers.

    Args:
        x: ``(N, 3, H, W)`` RGB in [0, 1].

    Returns:
        ``(N, 1, H, W)`` Y in [16/255, 235/255].

    >>> round(float(rgb_to_y(torch.ones(1, 3, 1, 1))[0, 0, 0, 0] * 255), 3)
    235.0
    """
    w = torch.tensor([65.481, 128.553, 24.966], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True) / 255.0 + 16.0 / 255.0


def luminance(x: torch.Tensor) -> torch.Tensor:
    """Full-range BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` of ``(3, H, W)`` or ``(N, 3, H, W)`` images.

    Returns:
        ``(1, H, W)`` or ``(N, 1, H, W)``, in [0, 1] for inputs in [0, 1].

    >>> luminance(torch.ones(3, 1, 1)).item()
    1.0
    """
    w = torch.tensor(_LUMA_BT601, device=x.device, dtype=x.dtype)
    return (x * w[:, None, None]).sum(-3, keepdim=True)


def rgb_to_yiq(x: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` RGB → YIQ (NTSC)."""
    return torch.einsum("ij,njhw->nihw", YIQ.to(x), x)


def yiq_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` YIQ → RGB (exact inverse of :func:`rgb_to_yiq`)."""
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(YIQ.double()).to(x), x)


def _sym_sqrt(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(m)
    return vecs @ torch.diag(vals.clamp_min(0).sqrt()) @ vecs.T


def match_color(source: torch.Tensor, target: torch.Tensor, *, eps: float = 1e-5) -> torch.Tensor:
    """Give ``source`` the RGB mean and covariance of ``target`` (linear colour transfer, "CORAL").

    Each channel of ``source`` is standardised (mean 0, unbiased std 1), decorrelated by the inverse
    symmetric square root of its channel correlation matrix and recorrelated by the square root of
    ``target``'s, then given ``target``'s per-channel std and mean, so the result has ``target``'s mean
    and covariance exactly (up to ``eps``). This is the colour histogram matching of Gatys et al.
    (arXiv:1606.05897, the "image analogies" variant with symmetric matrix square roots) as the AdaIN
    authors' code writes it (``coral`` in ``pytorch-AdaIN``), with one correction: that code uses
    ``Z Zᵀ + I`` where the correlation is ``Z Zᵀ / (N − 1)``, which scales the covariance by
    ``N_target / N_source`` when the two images differ in size; here the correlations are divided by
    ``N − 1`` and regularised by ``eps · I``. Not clipped. Computed in float64, returned in
    ``source``'s dtype.

    Args:
        source: ``(3, H, W)``, the image whose colours change (AdaIN: the style image).
        target: ``(3, H', W')``, the image whose colour statistics are imposed (AdaIN: the content).
        eps: added to the diagonal of both correlation matrices.

    Returns:
        ``(3, H, W)``.

    References:
        Gatys, Bethge, Hertzmann & Shechtman, "Preserving color in neural artistic style transfer",
        arXiv:1606.05897, 2016. Huang & Belongie, ICCV 2017, Section 7.

    >>> s = torch.rand(3, 8, 8); t = torch.rand(3, 5, 5)
    >>> torch.allclose(match_color(s, t).flatten(1).mean(1), t.flatten(1).mean(1), atol=1e-5)
    True
    """
    for name, x in (("source", source), ("target", target)):
        if x.ndim != 3 or x.shape[0] != 3:
            raise ValueError(f"{name} must have shape (3, H, W), got {tuple(x.shape)}")

    def standardise(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = x.double().reshape(3, -1)
        mean, std = f.mean(1, keepdim=True), f.std(1, keepdim=True)
        return (f - mean) / std, mean, std

    zs, _, _ = standardise(source)
    zt, mean_t, std_t = standardise(target)
    eye = torch.eye(3, dtype=torch.float64, device=zs.device)
    cov_s = zs @ zs.T / (zs.shape[1] - 1) + eps * eye
    cov_t = zt @ zt.T / (zt.shape[1] - 1) + eps * eye
    transfer = _sym_sqrt(cov_t) @ torch.linalg.inv(_sym_sqrt(cov_s))
    out = (transfer @ zs) * std_t + mean_t
    return out.reshape(source.shape).to(source.dtype)
