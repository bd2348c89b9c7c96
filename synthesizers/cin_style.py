"""One network for many styles: Johnson et al.'s transformation network with conditional instance
normalisation (Dumoulin, Shlens & Kudlur).

Every instance normalisation layer of the style network (:class:`texbench.synthesizers.johnson_networks.StyleNet`)
gets one scale and shift per style, ``γ_s, β_s ∈ R^C`` (:class:`ConditionalInstanceNorm2d`); everything else
is shared. The network is trained once on N style images (in a benchmark: the task's whole style set,
``TaskInput.style_set``, see :attr:`texbench.base.Synthesizer.trains_on_style_set`) and then stylises with
any of them in one forward pass. Mixing the styles' parameters, ``γ = Σ_s w_s γ_s`` and ``β = Σ_s w_s β_s``,
interpolates between styles (the paper's Section 4; ``synth --style A --style B`` with ``style_weights``).

Training: Johnson et al.'s perceptual losses and schedule (:mod:`texbench.synthesizers.johnson`, the same
defaults as ``johnson-style``: VGG-16 loss network, λ_c = 1, λ_s = 1.5, λ_TV = 1e-4, 40k Adam steps at
batch 4 of 256² crops). Each training image of a batch is paired with a style drawn uniformly at random
and conditioned on it; its style loss is taken against that style's Gram matrices. γ starts at 1 and β
at 0 for every style. The trained network is cached by :mod:`texbench.trained` under a key that holds
the hashes of all N styles (in order): every job of a benchmark's style task loads the same file, and
the leaderboard's ``train s`` counts the training once.

Departures, written down: Dumoulin et al.'s own network replaces the transposed convolutions by
nearest-neighbour up-sampling followed by a convolution, pads with reflection, and trains with its own
loss weights and schedule; texbench keeps Johnson et al.'s network and losses so that ``cin-style``
differs from ``johnson-style`` by the conditional normalisation alone.

References:
    Dumoulin, Shlens & Kudlur, "A Learned Representation for Artistic Style", ICLR 2017
    (arXiv:1610.07629).
    Johnson, Alahi & Fei-Fei, "Perceptual Losses for Real-Time Style Transfer and Super-Resolution",
    ECCV 2016.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from texbench.nets.backbones import VGG16Loss
from texbench.ops.resize import resize
from texbench.params import param
from texbench.synthesizers.johnson import JohnsonStyle, JohnsonStyleParams
from texbench.synthesizers.johnson_networks import StyleNet, TrainingImages

__all__ = ["CINStyle", "CINStyleParams", "ConditionalInstanceNorm2d", "cin_style_net", "set_style"]


class ConditionalInstanceNorm2d(nn.Module):
    """Instance normalisation with one scale ``γ_s`` and shift ``β_s`` per style.

    Args:
        channels: C.
        n_styles: N.

    The style is set beforehand with :meth:`set_mix` (or :func:`set_style` on a whole network): a weight
    vector ``(N,)`` for the whole batch or ``(B, N)`` per image; one-hot selects a style, other convex
    weights mix them. ``forward``: ``(B, C, H, W)`` → ``(B, C, H, W)``.
    """

    def __init__(self, channels: int, n_styles: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(n_styles, channels))
        self.beta = nn.Parameter(torch.zeros(n_styles, channels))
        self.mix: torch.Tensor | None = None

    def set_mix(self, mix: torch.Tensor) -> None:
        n = self.gamma.shape[0]
        if mix.ndim not in (1, 2) or mix.shape[-1] != n:
            raise ValueError(f"mix must have shape ({n},) or (B, {n}), got {tuple(mix.shape)}")
        self.mix = mix

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mix is None:
            raise ValueError("no style set: call set_style(net, mix) first")
        mix = self.mix.to(x)
        gamma, beta = mix @ self.gamma, mix @ self.beta  # (C,) or (B, C)
        if gamma.ndim == 1:
            gamma, beta = gamma[None], beta[None]
        return F.instance_norm(x, eps=1e-5) * gamma[..., None, None] + beta[..., None, None]


def cin_style_net(width: float, n_styles: int) -> StyleNet:
    """Johnson et al.'s style network with every instance norm made conditional on ``n_styles`` styles."""
    if n_styles < 1:
        raise ValueError(f"n_styles must be at least 1, got {n_styles}")
    net = StyleNet(width, "instance")
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.InstanceNorm2d):
                setattr(parent, name, ConditionalInstanceNorm2d(child.num_features, n_styles))
    return net


def set_style(net: nn.Module, mix: torch.Tensor) -> None:
    """Condition every :class:`ConditionalInstanceNorm2d` of ``net`` on ``mix`` (``(N,)`` or ``(B, N)``)."""
    layers = [m for m in net.modules() if isinstance(m, ConditionalInstanceNorm2d)]
    if not layers:
        raise ValueError("net has no conditional instance normalisation layers")
    for m in layers:
        m.set_mix(mix)


@dataclasses.dataclass(frozen=True)
class CINStyleParams(JohnsonStyleParams):
    """Parameters of :class:`CINStyle`: those of ``johnson-style`` (the training), and

    Attributes:
        style_weights: interpolation weights over several style images (``synth --style A --style B``),
            applied to γ and β; empty = equal weights; normalised to sum 1.
    """

    style_weights: tuple[float, ...] = param((), ge=0)


class CINStyle(JohnsonStyle):
    """Conditional instance normalisation: one transformation network trained on N styles, applied to any.

    ``prepare`` trains (or loads) the network for the task's style set (``TaskInput.style_set``; outside a
    benchmark, the style image(s) given); ``run`` selects ``task_input.style`` (or mixes
    ``task_input.styles`` with ``style_weights``) and is one forward pass. Recorded per job: the training
    keys of ``johnson-style``, ``styles_trained`` (N) and ``style_mix`` (the weights over the N styles).

    References:
        Dumoulin, Shlens & Kudlur, "A Learned Representation for Artistic Style", ICLR 2017;
        Johnson, Alahi & Fei-Fei, ECCV 2016 (the network and losses).
    """

    name = "cin-style"
    description = ("one Johnson et al. network for N styles with conditional instance norm (per-style gamma, "
                   "beta; Dumoulin et al.), trained once on the task's style set")
    tasks = ("style",)
    version = "1"
    references = "Dumoulin, Shlens & Kudlur, ICLR 2017 (arXiv:1610.07629); Johnson et al., ECCV 2016"
    Params = CINStyleParams
    presets = {
        "tiny": {"train_images": "builtin-train", "iterations": 20, "batch_size": 1, "train_size": 32,
                 "style_size": 64, "width": 0.25},
        "offline": {"train_images": "builtin-train"},
    }  # fmt: skip
    style_interpolation = True
    trains_on_style_set = True

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self._n_styles = 0

    def build_net(self) -> StyleNet:
        return cin_style_net(self.params.width, self._n_styles)

    # ------------------------------------------------------------------------------------------ styles
    @staticmethod
    def style_set(task_input: Any) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """``(the styles trained on, the styles applied)``: the task's style set and ``style`` in a
        benchmark, else the style image(s) given, both."""
        from texbench.imageio import image_hash

        applied = list(getattr(task_input, "styles", ()) or (task_input.style,))
        given = list(getattr(task_input, "style_set", ()))
        trained: list[torch.Tensor] = []
        seen: set[str] = set()
        for s in given or applied:
            h = image_hash(s)
            if h not in seen:
                seen.add(h)
                trained.append(s)
        return trained, applied

    def mix(self, trained: Sequence[torch.Tensor], applied: Sequence[torch.Tensor]) -> torch.Tensor:
        """Weights ``(N,)`` over the trained styles for the applied ones (``style_weights``, normalised)."""
        from texbench.imageio import image_hash
        from texbench.synthesizers.adain import normalised_weights

        index = {image_hash(s): k for k, s in enumerate(trained)}
        out = torch.zeros(len(trained))
        for w, s in zip(normalised_weights(self.params.style_weights, len(applied)), applied):
            k = index.get(image_hash(s))
            if k is None:
                raise ValueError(f"task_input.style is not one of the {len(trained)} style images {self.name} "
                                 "was trained on (TaskInput.style_set)")
            out[k] += w
        return out

    # ---------------------------------------------------------------------------------------- training
    def trained_net_for(self, styles: Sequence[torch.Tensor], device: torch.device) -> nn.Module:
        """The network for the style set ``styles`` (trained now or loaded from the cache)."""
        from texbench.imageio import image_hash

        p = self.params
        device = torch.device(device)
        self._n_styles = len(styles)

        def make_step(net: nn.Module, vgg: VGG16Loss, images: TrainingImages) -> Callable[..., Any]:
            grams = [self.style_targets(s, vgg) for s in styles]

            def step(gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
                labels = torch.randint(len(styles), (p.batch_size,), generator=gen)
                x = images.random_crops(p.batch_size, p.train_size, gen).to(device)
                set_style(net, F.one_hot(labels, len(styles)).float().to(device))
                targets = {n: torch.cat([grams[int(k)][n] for k in labels]) for n in p.style_layers}
                return self.objective(net, x, vgg, targets)

            return step

        return self._load_or_train({"styles": ",".join(image_hash(s) for s in styles)}, device, make_step)

    def _styles_of(self, task_input: Any) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        self._check(task_input)
        trained, applied = self.style_set(task_input)
        for k, s in enumerate(trained):
            if not isinstance(s, torch.Tensor) or s.ndim != 3 or s.shape[0] != 3:
                got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
                raise ValueError(f"task_input.style_set[{k}] must have shape (3, H, W), got {got}")
        return trained, applied

    def prepare(self, task_input: Any, *, seed: int, device: torch.device) -> None:
        self.trained_net_for(self._styles_of(task_input)[0], device)

    def run(self, task_input: Any, *, seed: int, device: torch.device) -> torch.Tensor:
        trained, applied = self._styles_of(task_input)
        mix = self.mix(trained, applied)
        net = self.trained_net_for(trained, device)
        content = task_input.content.float()
        if tuple(content.shape[-2:]) != tuple(task_input.size):
            content = resize(content, tuple(task_input.size))
        t0 = time.perf_counter()
        set_style(net, mix.to(device))
        with torch.no_grad():
            out = net(content[None].to(device))[0].clamp(0, 1)
        self.record(inference_seconds=time.perf_counter() - t0, styles_trained=len(trained),
                    style_mix=[round(float(w), 6) for w in mix], **self._last)  # fmt: skip
        return out.float()
