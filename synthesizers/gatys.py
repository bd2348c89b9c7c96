"""Gatys et al.: texture synthesis and style transfer by matching VGG-19 Gram matrices, and VGG inversion.

The image itself is optimised (L-BFGS by default, as in the papers; Adam selectable) so that its Gram
matrices on ``relu1_1, relu2_1, relu3_1, relu4_1, relu5_1`` match those of the exemplar / style image,
plus, for style transfer, its ``relu4_2`` features match those of the content image.

Which source each setting follows:

* the defaults are the course's setting: style layers ``relu1_1 … relu5_1`` (the CVPR 2016 paper's),
  ``w_i = 1/C_i``, Grams divided by the number of positions, a budget of function evaluations;
* the preset ``deeptextures`` (``--preset deeptextures``) is the authors' texture code, DeepTextures
  (Gatys, Ecker & Bethge 2015): layers ``conv1_1, pool1, pool2, pool3, pool4`` with weights 1e9 each,
  their ``gram_mse_loss`` normalisation, L-BFGS-B with ``maxiter=2000``, ``m=20``, their start and
  bounds on Caffe's input scale; every constant and where it comes from is in :data:`DEEPTEXTURES`.

Loss (see :mod:`texbench.ops.gram` for the normalisation):

* style: ``L_s = Σ_i w_i² ‖G_i(u) − G_i(s)‖²_F``, ``G = FᵀF / N_positions``, ``w_i = 1/C_i``;
* content: ``L_c = mean((F(u) − F(c))²)`` over the C·H·W entries of ``relu4_2``;
* total: ``L = L_s + content_weight · L_c`` (style task), ``L = L_s`` (texture task).

With the normalised VGG-19 and this normalisation, both terms start at comparable orders of magnitude
(≈ 1-10 when the image is initialised from the other image), and ``content_weight`` ≈ 1 keeps the content
recognisable while the style is transferred; Gatys et al.'s ``α/β = 10⁻³`` (content/style) refers to their
unnormalised sums and does not carry over as a number.

Speed: the target Gram matrices (and content features) are computed once per scale, under ``no_grad``;
the network is cut after the deepest layer used; every L-BFGS function evaluation is one forward and one
backward pass, nothing else.

Departures of the defaults from the papers' code, written down (the ``deeptextures`` preset removes
all but the last):

* none for the optimiser: the default is scipy's L-BFGS-B with the pixels bounded to [0, 1], as in the
  papers' code. ``optimizer="lbfgs"`` (``torch.optim.LBFGS``, strong-Wolfe line search) has no bounds:
  the pixels go out of range and clipping them at the end costs a lot (64×64 pebbles, 40 evaluations:
  style loss 0.031 with L-BFGS-B, 0.036 unclipped but 0.48 clipped with torch's L-BFGS), which is why it
  is not the default;
* the white-noise start is uniform in [0, 1] (DeepTextures starts from N(0, 1) on Caffe's 0-255 scale
  around the mean pixel, i.e. almost a flat grey image; both are white noise);
* pooling of odd-sized maps floors (Caffe ceils); outputs of even size are unaffected.

Size: a little over the house's ~500 lines: the two methods (Gatys, VGG inversion) share the optimiser
and the multi-scale plumbing, and their parameter classes document every paper default in place.

References:
    Gatys, Ecker & Bethge, "Texture synthesis using convolutional neural networks", NeurIPS 2015.
    Gatys, Ecker & Bethge, "Image style transfer using convolutional neural networks", CVPR 2016.
    Gatys, Bethge, Hertzmann & Shechtman, "Preserving color in neural artistic style transfer",
    arXiv:1606.05897, 2016.
    Mahendran & Vedaldi, "Understanding deep image representations by inverting them", CVPR 2015.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any, Literal

import torch
import torch.nn.functional as F

from texbench.base import Synthesizer
from texbench.nets.vgg19 import (
    CAFFE_MEAN_BGR,
    CONTENT_LAYER,
    LAYER_NAMES,
    STYLE_LAYERS,
    VGG19Features,
    VGGPadding,
    VGGPooling,
    VGGWeights,
)
from texbench.ops.color import rgb_to_yiq, yiq_to_rgb
from texbench.ops.gram import GramNorm, LayerWeights, gram_matrix, style_loss
from texbench.ops.resize import resize
from texbench.params import Params, param

Optimizer = Literal["lbfgs-b", "lbfgs", "adam"]

__all__ = [
    "DEEPTEXTURES",
    "Gatys",
    "GatysParams",
    "VGGInversion",
    "VGGInversionParams",
    "exemplar_bounds",
    "gram_style_loss",
    "optimise_image",
    "white_noise",
]


@dataclasses.dataclass(frozen=True)
class GatysParams(Params):
    """Parameters of :class:`Gatys`.

    The defaults follow the course's setting (``relu1_1 … relu5_1``, ``w_i = 1/C_i``, Grams divided by
    the number of positions, a budget of function evaluations); the ``deeptextures`` preset is the
    authors' own texture code (see :data:`DEEPTEXTURES`).

    Attributes:
        weights: ``"normalised"`` (Gatys' normalised Caffe VGG-19) or ``"imagenet"`` (torchvision).
        pooling: ``"avg"`` (the papers) or ``"max"``.
        padding: ``"zeros"`` (Caffe, the papers) or ``"reflect"``.
        style_layers: layers whose Gram matrices are matched.
        content_layer: layer whose features are matched (style task).
        gram_norm: Gram normalisation (``"positions"``: by H·W; ``"all"``: by C·H·W; ``"none"``).
        layer_weights: ``"inverse-channels"`` (w_i = 1/C_i), ``"half-inverse-channels"`` (w_i = 1/(2 C_i),
            Gatys et al.'s ``1/(4 N_l²)``) or ``"uniform"``.
        style_weights: per-layer factors λ_i of the style loss ``Σ_i λ_i w_i² ‖G_i(u) − G_i(s)‖²_F``, one
            per entry of ``style_layers`` (the paper's ``w_l``; DeepTextures: 1e9 each); empty: all 1.
        content_weight: λ in ``L_s + λ L_c`` (style task).
        init: style task start: ``"noise"`` (the CVPR paper) or ``"content"``. Texture always starts from
            noise.
        noise: the white noise the texture (and ``init="noise"``) starts from: ``"uniform"`` in [0, 1], or
            ``"mean-pixel-normal"``, DeepTextures' ``np.random.randn`` on Caffe's input scale, i.e. the
            ImageNet mean pixel plus N(0, 1/255²) per pixel (drawn from torch's seeded generator, not
            numpy's global one).
        bounds: the box of the pixels under L-BFGS-B (and the clipping of the others): ``"unit"``,
            [0, 1]; ``"exemplar"``, DeepTextures' ``get_bounds``: the exemplar's (style image's) minimum
            and maximum over all channels on Caffe's input scale (BGR × 255 minus the mean pixel), the same
            two numbers for every channel there, so per channel in RGB [0, 1] (they may reach outside
            [0, 1]; the output is clipped to [0, 1] at the end).
        pixel_scale: the L-BFGS variants optimise ``pixel_scale`` × the [0, 1] pixels (DeepTextures: 255,
            Caffe's input scale). L-BFGS-B's first step is the unscaled gradient, so the scale changes the
            path, not the minimiser; Adam is scale-free (``adam_lr`` stays on the [0, 1] scale).
        preserve_color: luminance-only transfer (Gatys et al. 2016b): style and content are converted to
            luminance (the style's luminance matched to the content's mean and std), the transfer runs on
            luminance, and the content's chrominance (YIQ) is put back.
        optimizer: ``"lbfgs-b"`` (scipy's bounded L-BFGS-B, as the papers' code), ``"lbfgs"``
            (``torch.optim.LBFGS``, unbounded, clipped at the end) or ``"adam"`` (projected); see
            :func:`optimise_image`.
        max_evals: budget in loss/gradient evaluations (all scales together).
        max_iterations: L-BFGS iteration limit (all scales together; scipy's ``maxiter``); 0: the
            evaluation budget alone decides. DeepTextures: 2000, with scipy's default ``maxfun`` 15000.
        history_size: L-BFGS memory.
        adam_lr: Adam's step size on the [0, 1] pixel scale.
        scales: coarse-to-fine levels (1 = off); level k works at 1/2^k of the output size, with the
            exemplar/style/content down-sampled alike, and its result, up-sampled, starts the next level.
            The budget is split equally between levels.
        report_every: report the current image about every this many evaluations (at the first accepted
            iterate past each multiple, on the finest level only, and the final output) through
            :meth:`~texbench.base.Synthesizer.report_iterate`, when the runner listens. Does not change the
            output.
    """

    weights: VGGWeights = "normalised"
    pooling: VGGPooling = "avg"
    padding: VGGPadding = "zeros"
    style_layers: tuple[str, ...] = param(STYLE_LAYERS, nonempty=True, choices=LAYER_NAMES)
    content_layer: str = param(CONTENT_LAYER, choices=LAYER_NAMES)
    gram_norm: GramNorm = "positions"
    layer_weights: LayerWeights = "inverse-channels"
    style_weights: tuple[float, ...] = param((), ge=0)
    content_weight: float = param(1.0, ge=0)
    init: Literal["noise", "content"] = "noise"
    noise: Literal["uniform", "mean-pixel-normal"] = "uniform"
    bounds: Literal["unit", "exemplar"] = "unit"
    pixel_scale: float = param(1.0, gt=0)
    preserve_color: bool = False
    optimizer: Optimizer = "lbfgs-b"
    max_evals: int = param(1000, ge=1)
    max_iterations: int = param(0, ge=0)
    history_size: int = param(100, ge=1)
    adam_lr: float = param(0.02, gt=0)
    scales: int = param(1, ge=1)
    report_every: int = param(25, ge=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        # ties two fields (every level needs at least one evaluation): not a bound of either alone
        if self.max_evals < self.scales:
            raise ValueError(f"max_evals ({self.max_evals}) must be >= scales ({self.scales})")
        if self.style_weights and len(self.style_weights) != len(self.style_layers):
            raise ValueError(
                f"style_weights must hold one weight per style layer ({len(self.style_layers)}), "
                f"got {len(self.style_weights)}"
            )
        if 0 < self.max_iterations < self.scales:
            raise ValueError(f"max_iterations ({self.max_iterations}) must be 0 or >= scales ({self.scales})")


#: Gatys, Ecker & Bethge's texture code (github.com/leongatys/DeepTextures, ``Example.ipynb`` with
#: ``DeepImageSynthesis/{ImageSyn,LossFunctions,Misc}.py``), written as overrides of :class:`GatysParams`:
#:
#: * ``tex_layers = ['pool4', 'pool3', 'pool2', 'pool1', 'conv1_1']``: Caffe's ReLUs work in place, so
#:   the blob ``conv1_1`` holds the rectified output, texbench's ``relu1_1``;
#: * ``tex_weights = [1e9] * 5`` and ``gram_mse_loss``: ``weight/4 · Σ (G − A)² / N²`` with
#:   ``G = F Fᵀ / M`` (N channels, M positions), i.e. positions-normalised Grams and ``w_i = 1/(2 N_i)``;
#: * ``VGG_ave_pool_deploy.prototxt`` with ``vgg_normalised.caffemodel``: the normalised VGG-19, average
#:   pooling, zero padding;
#: * ``minimize(method='L-BFGS-B', options={'maxiter': 2000, 'maxcor': 20, 'ftol': 0, 'gtol': 0})``:
#:   2000 iterations, memory 20, scipy's default ``maxfun`` (15000) as the evaluation cap;
#: * ``init = np.random.randn(...)`` on Caffe's input scale and ``bounds = get_bounds([source_img])``,
#:   the optimisation variable being Caffe's input (0-255 scale).
#:
#: Departures that stay: the output size is the task's (DeepTextures synthesises at the exemplar's size,
#: rescaled to 256² pixels); pooling floors odd sizes (Caffe ceils); the noise comes from torch's seeded
#: generator; the notebook's final histogram matching (not used for the paper's figures, says its
#: README) is not done.
DEEPTEXTURES: dict[str, Any] = {
    "weights": "normalised",
    "pooling": "avg",
    "padding": "zeros",
    "style_layers": ("relu1_1", "pool1", "pool2", "pool3", "pool4"),
    "style_weights": (1e9, 1e9, 1e9, 1e9, 1e9),
    "gram_norm": "positions",
    "layer_weights": "half-inverse-channels",
    "noise": "mean-pixel-normal",
    "bounds": "exemplar",
    "pixel_scale": 255.0,
    "optimizer": "lbfgs-b",
    "max_iterations": 2000,
    "max_evals": 15000,
    "history_size": 20,
    "scales": 1,
}


# ------------------------------------------------------------------------------------------- optimisation
def optimise_image(
    x0: torch.Tensor,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    *,
    max_evals: int,
    optimizer: Optimizer = "lbfgs-b",
    history_size: int = 100,
    adam_lr: float = 0.02,
    max_iterations: int = 0,
    bounds: tuple[torch.Tensor, torch.Tensor] | None = None,
    scale: float = 1.0,
    on_iterate: Callable[[int, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Minimise ``loss_fn(x)`` over the pixels of ``x`` within about ``max_evals`` loss/gradient evaluations.

    Args:
        x0: start ``(1, 3, H, W)`` in [0, 1] (not modified).
        loss_fn: scalar loss of the image.
        max_evals: evaluation budget. Adam stops exactly there; both L-BFGS variants check it between
            iterations, so their last line search may overshoot it by a few evaluations (the count
            recorded is the true one).
        optimizer:
            ``"lbfgs-b"``: scipy's L-BFGS-B with the pixels bounded to [0, 1], the optimiser of Gatys et
            al.'s code (the default);
            ``"lbfgs"``: ``torch.optim.LBFGS`` with strong-Wolfe line search, unbounded, clipped at the end
            (stays on the device, but clipping costs quality: see the module docstring);
            ``"adam"``: projected Adam (pixels clipped to [0, 1] after each step).
        history_size: L-BFGS memory (``maxcor`` of L-BFGS-B).
        adam_lr: Adam step size on the [0, 1] scale.
        max_iterations: iteration limit of the L-BFGS variants (0: none besides ``max_evals``).
        bounds: ``(lower, upper)`` broadcastable to ``x0``: L-BFGS-B's box, the projection of Adam and
            the final clipping of torch's L-BFGS (default: [0, 1]).
        scale: the L-BFGS variants optimise ``scale · x`` (their first step depends on it); Adam ignores
            it (its steps are scale-free).
        on_iterate: called as ``on_iterate(evaluations so far, image)`` with each accepted iterate
            (L-BFGS-B: the end of each line search; Adam: after each step; ``lbfgs``: each evaluated point,
            as torch's optimiser exposes no accepted point) as a detached ``(1, 3, H, W)`` tensor.

    Returns:
        The optimised image (detached) and ``{"loss_curve": [...], "loss_curve_evals": [...], "evals": n,
        "iterations": n}``. The curve has one value per iteration: the start, then the accepted point of
        each L-BFGS line search (Adam: the value before each step), with the number of evaluations spent
        so far beside it.
    """
    x = x0.detach().clone()
    shape, device, dtype = x.shape, x.device, x.dtype
    if bounds is None:
        lower, upper = torch.zeros_like(x), torch.ones_like(x)
    else:
        lower, upper = (b.to(device=device, dtype=dtype).expand(shape) for b in bounds)
    iter_cap = max_iterations if max_iterations > 0 else max_evals
    n_evals = 0
    curve: list[float] = []
    curve_evals: list[int] = []
    if optimizer == "lbfgs-b":
        import numpy as np
        import scipy.optimize

        last = {"f": math.nan}

        def fg(v: np.ndarray) -> tuple[float, np.ndarray]:
            nonlocal n_evals
            u = torch.from_numpy(v / scale).to(device=device, dtype=dtype).view(shape).requires_grad_(True)
            loss = loss_fn(u)
            (grad,) = torch.autograd.grad(loss, u)
            n_evals += 1
            last["f"] = loss.item()
            if not curve:
                curve.append(last["f"])
                curve_evals.append(n_evals)
            return last["f"], grad.detach().to(torch.float64).cpu().numpy().ravel() / scale

        def callback(intermediate_result: Any) -> None:
            # L-BFGS-B's line search ends on the accepted point, so the last value is that of x_k
            curve.append(float(intermediate_result.fun))
            curve_evals.append(n_evals)
            if on_iterate is not None:
                on_iterate(n_evals, torch.from_numpy(intermediate_result.x / scale).to(device=device, dtype=dtype).view(shape))

        def flat(t: torch.Tensor) -> np.ndarray:
            return t.detach().to(torch.float64).cpu().numpy().ravel() * scale

        res = scipy.optimize.minimize(
            fg,
            flat(x),
            jac=True,
            method="L-BFGS-B",
            bounds=scipy.optimize.Bounds(flat(lower), flat(upper)),
            callback=callback,
            # zero tolerances: the evaluation budget decides, as in the papers' fixed iteration counts
            options={
                "maxfun": max_evals,
                "maxiter": iter_cap,
                "maxcor": history_size,
                "ftol": 0.0,
                "gtol": 0.0,
            },
        )
        x = torch.from_numpy(res.x / scale).to(device=device, dtype=dtype).view(shape)
        n_iter = int(res.nit)
    elif optimizer == "lbfgs":
        v = (x * scale).requires_grad_(True)
        evals: list[tuple[int, float]] = []  # (iteration, loss)
        # tolerances 0: the evaluation budget decides (a zero step still ends the run early)
        opt = torch.optim.LBFGS(
            [v],
            lr=1.0,
            max_iter=iter_cap,
            max_eval=max_evals,
            history_size=history_size,
            tolerance_grad=0.0,
            tolerance_change=0.0,
            line_search_fn="strong_wolfe",
        )

        def closure() -> torch.Tensor:
            opt.zero_grad(set_to_none=False)
            loss = loss_fn(v / scale)
            loss.backward()
            evals.append((opt.state[v].get("n_iter", 0), loss.item()))
            if on_iterate is not None:
                on_iterate(len(evals), (v.detach() / scale).clamp(0, 1))
            return loss

        opt.step(closure)
        # The accepted point of a strong-Wolfe line search is the lowest value it evaluated.
        best: dict[int, float] = {}
        upto: dict[int, int] = {}
        for i, (it, val) in enumerate(evals, 1):
            best[it] = min(val, best.get(it, math.inf))
            upto[it] = i
        iters = sorted(best)
        curve = [best[it] for it in iters]
        curve_evals = [upto[it] for it in iters]
        n_evals, n_iter = len(evals), max(iters)
        x = torch.minimum(torch.maximum(v.detach() / scale, lower), upper)
    elif optimizer == "adam":
        x.requires_grad_(True)
        opt = torch.optim.Adam([x], lr=adam_lr)
        for i in range(max_evals):
            opt.zero_grad(set_to_none=False)
            loss = loss_fn(x)
            loss.backward()
            curve.append(loss.item())
            curve_evals.append(i + 1)
            opt.step()
            with torch.no_grad():
                x.copy_(torch.minimum(torch.maximum(x, lower), upper))
            if on_iterate is not None:
                on_iterate(i + 1, x.detach())
        n_evals = n_iter = max_evals
        x = x.detach()
    else:
        raise ValueError(f"optimizer must be 'lbfgs-b', 'lbfgs' or 'adam', got {optimizer!r}")
    info = {"loss_curve": curve, "loss_curve_evals": curve_evals, "evals": n_evals, "iterations": n_iter}
    return x, info


def _scaled(size: tuple[int, int], level: int) -> tuple[int, int]:
    return (max(1, round(size[0] / 2**level)), max(1, round(size[1] / 2**level)))


def _luminance_pair(content: torch.Tensor, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Grey (3-channel) content and style, the style's luminance matched to the content's mean and std."""
    yc = rgb_to_yiq(content)[:, :1]
    ys = rgb_to_yiq(style)[:, :1]
    ys = (ys - ys.mean()) * (yc.std() / ys.std().clamp_min(1e-8)) + yc.mean()
    return yc.clamp(0, 1).expand(-1, 3, -1, -1), ys.clamp(0, 1).expand(-1, 3, -1, -1)


# -------------------------------------------------------------------------------------------- the methods
class _VGGOptimiser(Synthesizer):
    """Shared plumbing: one frozen, truncated VGG-19 per (layers, device), and provenance."""

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self._nets: dict[tuple, VGG19Features] = {}
        self._provenance: dict[str, str] = {}

    def _net(self, layers: tuple[str, ...], device: torch.device, seed: int) -> VGG19Features:
        key = (layers, str(device))
        if key not in self._nets:
            p = self.params
            net = VGG19Features(
                layers, weights=p.weights, pooling=p.pooling, padding=p.padding, random_seed=seed
            )
            self._nets[key] = net.to(device)
            self._provenance = {"vgg19": net.provenance}
        return self._nets[key]

    def provenance(self) -> dict[str, str]:
        return dict(self._provenance)


def white_noise(
    size: tuple[int, int], seed: int, device: torch.device, kind: str = "uniform"
) -> torch.Tensor:
    """Seeded white noise ``(1, 3, H, W)``, the start of texture synthesis (see ``GatysParams.noise``).

    ``"uniform"``: U[0, 1] per pixel; ``"mean-pixel-normal"``: Caffe's mean pixel plus N(0, 1) on the
    0-255 scale, as DeepTextures starts (``np.random.randn`` on Caffe's input), in RGB [0, 1].
    """
    gen = torch.Generator().manual_seed(seed)  # drawn on the CPU: the same start on every device
    if kind == "uniform":
        return torch.rand((1, 3, *size), generator=gen).to(device)
    if kind == "mean-pixel-normal":
        mean_rgb = torch.tensor(CAFFE_MEAN_BGR[::-1]).view(1, 3, 1, 1)
        return ((mean_rgb + torch.randn((1, 3, *size), generator=gen)) / 255.0).to(device)
    raise ValueError(f"noise must be 'uniform' or 'mean-pixel-normal', got {kind!r}")


def exemplar_bounds(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """DeepTextures' ``get_bounds``: per-channel pixel bounds ``(lower, upper)``, each ``(1, 3, 1, 1)``.

    The exemplar's minimum ``L`` and maximum ``U`` over all channels on Caffe's input scale
    (``255·x − mean`` per BGR channel) bound every channel there; in RGB [0, 1] channel c gets
    ``[(L + mean_c)/255, (U + mean_c)/255]``.

    Args:
        image: ``(1, 3, H, W)`` RGB in [0, 1].
    """
    mean_rgb = torch.tensor(CAFFE_MEAN_BGR[::-1], dtype=torch.float64, device=image.device).view(1, 3, 1, 1)
    caffe = image.to(torch.float64) * 255.0 - mean_rgb
    lo, hi = caffe.min(), caffe.max()
    return ((lo + mean_rgb) / 255.0).to(image.dtype), ((hi + mean_rgb) / 255.0).to(image.dtype)


def gram_style_loss(
    features: dict[str, torch.Tensor], targets: list[torch.Tensor], p: GatysParams
) -> torch.Tensor:
    """The style (texture) loss of ``p`` per image: ``Σ_i λ_i w_i² ‖G_i − T_i‖²_F`` over ``p.style_layers``.

    Args:
        features: VGG-19 activations by layer name, ``(N, C_i, H_i, W_i)``.
        targets: the exemplar's Gram matrices, in the order of ``p.style_layers``.
    """
    grams = [gram_matrix(features[n], normalize=p.gram_norm) for n in p.style_layers]
    return style_loss(grams, targets, layer_weights=p.layer_weights, layer_factors=p.style_weights or None)


class Gatys(_VGGOptimiser):
    """Gatys et al.: texture synthesis (Gram matching from white noise) and neural style transfer.

    Texture: the output (``task_input.size``, independent of the exemplar's size) starts from seeded
    white noise and is optimised to match the exemplar's Gram matrices. Style: the output (the content's
    size) matches the style image's Gram matrices and the content's ``relu4_2`` features.

    Diagnostics recorded per job: ``loss_curve`` (per L-BFGS iteration or Adam step),
    ``loss_curve_evals``, ``evals``, ``iterations``, ``optimizer``, ``style_loss_start``/``style_loss_end``,
    ``seconds_per_eval`` (``style_loss_start`` is taken at the start of the coarsest level,
    ``style_loss_end`` on the returned, clipped image).

    References:
        Gatys, Ecker & Bethge, NeurIPS 2015; CVPR 2016. Gatys et al., arXiv:1606.05897 (colour).
    """

    name = "gatys"
    description = "Gatys et al.: VGG-19 Gram-matrix texture synthesis and style transfer (L-BFGS)"
    tasks = ("texture", "style")
    version = "1"
    references = "Gatys, Ecker & Bethge, NeurIPS 2015 and CVPR 2016"
    Params = GatysParams
    presets = {
        "tiny": {"max_evals": 20, "history_size": 20},
        "fast": {"max_evals": 200, "history_size": 50},
        "deeptextures": DEEPTEXTURES,
    }

    def run(self, task_input: Any, *, seed: int, device: torch.device) -> torch.Tensor:
        device = torch.device(device)
        p: GatysParams = self.params
        task = task_input.task
        if task not in self.tasks:
            raise ValueError(f"gatys supports tasks {self.tasks}, got {task!r}")
        size = tuple(task_input.size)
        if task == "texture":
            if task_input.image is None:
                raise ValueError("texture task needs task_input.image (the exemplar)")
            style = task_input.image[None].float().to(device)
            content = None
            layers = tuple(p.style_layers)
        else:
            task_input.require(self.name, "content", "style")
            content = task_input.content[None].float().to(device)
            style = task_input.style[None].float().to(device)
            layers = tuple(dict.fromkeys((*p.style_layers, p.content_layer)))
            if p.preserve_color:
                content_rgb = content
                content, style = _luminance_pair(content, style)
        ordered = tuple(n for n in LAYER_NAMES if n in layers)
        net = self._net(ordered, device, seed)
        box = exemplar_bounds(style) if p.bounds == "exemplar" else None

        def finish(u: torch.Tensor) -> torch.Tensor:
            """The output from the optimised image: clipped, with the content's colours where kept."""
            u = u.clamp(0, 1)
            if task == "style" and p.preserve_color:
                yiq = rgb_to_yiq(content_rgb)
                yiq[:, :1] = rgb_to_yiq(u)[:, :1]
                u = yiq_to_rgb(yiq).clamp(0, 1)
            return u

        reported = [0]  # evaluations at the last report

        def report(evals: int, u: torch.Tensor) -> None:
            if evals // p.report_every > reported[0] // p.report_every:
                reported[0] = evals
                self.report_iterate(evals, finish(u)[0].float())

        start = time.perf_counter()
        curve: list[float] = []
        curve_evals: list[int] = []
        evals_done = iterations = 0
        x: torch.Tensor | None = None
        style_start = style_end = math.nan
        for level in range(p.scales - 1, -1, -1):
            lsize = _scaled(size, level)
            budget = p.max_evals // p.scales + (p.max_evals % p.scales if level == 0 else 0)
            iter_budget = p.max_iterations // p.scales + (p.max_iterations % p.scales if level == 0 else 0)
            s_img = resize(style, _scaled(tuple(style.shape[-2:]), level)) if level else style
            c_img = resize(content, lsize) if content is not None else None
            with torch.no_grad():
                feats = net(s_img)
                targets = [gram_matrix(feats[n], normalize=p.gram_norm) for n in p.style_layers]
                c_target = net(c_img)[p.content_layer] if c_img is not None else None
                del feats
            if x is None:
                x0 = (
                    c_img.clone()
                    if (c_img is not None and p.init == "content")
                    else white_noise(lsize, seed, device, p.noise)
                )
            else:
                x0 = F.interpolate(x, size=lsize, mode="bilinear", align_corners=False)

            def style_term(u: torch.Tensor, targets=targets) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
                f = net(u)
                return gram_style_loss(f, targets, p)[0], f

            def loss_fn(u: torch.Tensor, c_target=c_target, style_term=style_term) -> torch.Tensor:
                ls, f = style_term(u)
                if c_target is None:
                    return ls
                return ls + p.content_weight * (f[p.content_layer] - c_target).pow(2).mean()

            if level == p.scales - 1:
                with torch.no_grad():
                    style_start = float(style_term(x0)[0])
            x, info = optimise_image(
                x0,
                loss_fn,
                max_evals=budget,
                optimizer=p.optimizer,
                history_size=p.history_size,
                adam_lr=p.adam_lr,
                max_iterations=iter_budget,
                bounds=box,
                scale=p.pixel_scale,
                # only the finest level has the output's size; the offset counts the coarser levels' evaluations
                on_iterate=(lambda n, u, done=evals_done: report(done + n, u))
                if level == 0 and self.wants_iterates else None,
            )
            curve += info["loss_curve"]
            curve_evals += [e + evals_done for e in info["loss_curve_evals"]]
            evals_done += info["evals"]
            iterations += info["iterations"]
            if level == 0:
                with torch.no_grad():
                    style_end = float(style_term(x.clamp(0, 1))[0])
        seconds = time.perf_counter() - start
        assert x is not None
        out = finish(x)
        if self.wants_iterates and reported[0] < evals_done:
            self.report_iterate(evals_done, out[0].float())
        self.record(
            optimizer=p.optimizer,
            loss_curve=curve,
            loss_curve_evals=curve_evals,
            evals=evals_done,
            iterations=iterations,
            style_loss_start=style_start,
            style_loss_end=style_end,
            seconds_per_eval=seconds / max(evals_done, 1),
        )
        return out[0].float()


@dataclasses.dataclass(frozen=True)
class VGGInversionParams(Params):
    """Parameters of :class:`VGGInversion`.

    Attributes:
        layer: the layer whose spatial features are matched. Default ``relu5_1``, the course's choice: the
            last convolutional layer (with its ReLU) of the truncated VGG-19 the Gatys setting uses, which
            ends at ``relu5_1``, its deepest style layer.
        weights, pooling, padding: as for :class:`GatysParams`.
        optimizer, max_evals, history_size, adam_lr: as for :class:`GatysParams`.
    """

    layer: str = param(STYLE_LAYERS[-1], choices=LAYER_NAMES)
    weights: VGGWeights = "normalised"
    pooling: VGGPooling = "avg"
    padding: VGGPadding = "zeros"
    optimizer: Optimizer = "lbfgs-b"
    max_evals: int = param(500, ge=1)
    history_size: int = param(100, ge=1)
    adam_lr: float = 0.02


class VGGInversion(_VGGOptimiser):
    """Feature inversion: match one layer's *spatial* VGG-19 features (no Gram matrix).

    It runs on the style task because that task supplies two images: the target is the style image
    (resized to the content's size, since spatial features only compare at equal size) seen through one
    layer, and the optimisation starts from the content image. Where Gram matching keeps only
    statistics, matching the spatial features rebuilds the style image's layout from a different start,
    showing that the layer keeps the spatial arrangement (the course's "deep dream" variant, after
    Mahendran & Vedaldi). The texture task has a single image and no second image to start from, and a
    noise start would only show inversion, not the change of layout.

    References:
        Mahendran & Vedaldi, "Understanding deep image representations by inverting them", CVPR 2015;
        Gatys, Ecker & Bethge, CVPR 2016 (content reconstructions, Fig. 1).
    """

    name = "vgg-inversion"
    description = "match one layer's spatial VGG-19 features of the style image, starting from the content"
    tasks = ("style",)
    version = "2"
    references = "Mahendran & Vedaldi, CVPR 2015; Gatys, Ecker & Bethge, CVPR 2016"
    Params = VGGInversionParams
    presets = {"tiny": {"max_evals": 20, "history_size": 10, "layer": "relu3_1"}}

    def run(self, task_input: Any, *, seed: int, device: torch.device) -> torch.Tensor:
        device = torch.device(device)
        p: VGGInversionParams = self.params
        task_input.require(self.name, "content", "style", task="style")
        size = tuple(task_input.size)
        content = resize(task_input.content[None].float().to(device), size)
        target_img = resize(task_input.style[None].float().to(device), size)
        net = self._net((p.layer,), device, seed)
        with torch.no_grad():
            target = net(target_img)[p.layer]

        def loss_fn(u: torch.Tensor) -> torch.Tensor:
            return (net(u)[p.layer] - target).pow(2).mean()

        start = time.perf_counter()
        x, info = optimise_image(
            content,
            loss_fn,
            max_evals=p.max_evals,
            optimizer=p.optimizer,
            history_size=p.history_size,
            adam_lr=p.adam_lr,
        )
        self.record(
            optimizer=p.optimizer,
            seconds_per_eval=(time.perf_counter() - start) / max(info["evals"], 1),
            **info,
        )
        return x.clamp(0, 1)[0].float()
