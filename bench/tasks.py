"""Tasks: what a job receives (:class:`TaskInput`), the degradations of restoration tasks, and which
metrics apply.

Degradations are written down here as code, and their parameters are stored with every result:

* ``denoise``: additive white Gaussian noise, σ given on the 0-255 scale (default 25), drawn from a
  generator seeded by the clean image's hash (so every method and seed sees the same noisy image), then
  clipped to [0, 1] by default (``clip = true``, as in Deep Image Prior's and most colour-denoising
  code; ``clip = false`` keeps the unclipped Gaussian model). The noisy image stays float32, not
  quantised, so the degradation is exactly the one a method may model.
* ``inpaint``: a binary mask (1 = known) drawn from a generator seeded by the clean image's hash: either
  ``random`` pixels (each pixel missing independently with probability ``missing``, as in Deep Image
  Prior's 50%-missing-pixels experiment) or one axis-aligned ``region`` (a rectangle covering the fraction
  ``missing`` of the image, with the aspect ratio of the image, at a seeded random position). The method
  receives the masked image (missing pixels set to 0) and the mask.
* ``sr4``: the high-resolution image is first cropped at the bottom and right to a multiple of 4 in both
  dimensions ("modcrop", as SR papers do), then down-sampled by 4 with antialiased bicubic interpolation
  (Keys kernel a = -0.5 widened by the scale factor, the MATLAB ``imresize`` convention; torch's
  ``interpolate(mode="bicubic", antialias=True)``), clipped to [0, 1] and kept in float32.
  :func:`downsample` (defined in :mod:`texbench.ops.resize`, re-exported here as the task's operator) is
  differentiable, so Deep Image Prior uses the very same operator.
* ``jpeg``: the clean image, quantised to uint8, encoded by Pillow's JPEG encoder (libjpeg's standard
  IJG tables scaled by ``quality``; chroma ``subsampling`` 4:2:0 by default, Pillow's own default) and
  decoded back to float32 in [0, 1] (:func:`jpeg_compress`). The default quality, 20, is the one of Deep
  Image Prior's own JPEG example: ``data/denoising/snail.jpg`` carries exactly the IJG tables of quality
  20 (luma and chroma, checked against libjpeg's scaling) with 4:2:0 sampling. The paper states no
  quality; its example has no clean original, so the scored task compresses clean images instead.

Size: the seven tasks and the degradations they apply are read together (a task's ``build`` is a few
lines over its degradation), so they stay in one module rather than one per task.
"""

from __future__ import annotations

import dataclasses
import hashlib
import typing
from collections.abc import Mapping
from typing import Any

import torch

from texbench.ops.resize import downsample, resize
from texbench.params import NoParams, Params, build_params, param, params_to_dict

__all__ = [
    "TASKS",
    "DenoiseParams",
    "Example",
    "MetricUse",
    "SR4Params",
    "Task",
    "TaskInput",
    "InpaintParams",
    "JPEGParams",
    "add_gaussian_noise",
    "jpeg_compress",
    "inpainting_mask",
    "center_crop_resize",
    "downsample",
    "get_task",
    "task_output_kind",
    "modcrop",
    "resize",
]


@dataclasses.dataclass(frozen=True)
class TaskInput:
    """What a synthesizer receives for one job.

    Attributes:
        task: task name.
        item: identity of the dataset item(s), e.g. ``"brick"`` or ``"astronaut+marble"``.
        size: output ``(H, W)`` the method must return.
        image: texture exemplar (``texture``) or the degraded image (``denoise``, ``sr4``), ``(3, h, w)``.
        content: content image (``style``), ``(3, H, W)``; the output has its size.
        style: style image (``style``), ``(3, h, w)``, any size.
        styles: ``style`` only: several style images to interpolate between (``texbench synth`` with
            ``--style`` repeated; ``style`` is then the first). Empty in benchmarks, where each job has one
            style image. Only methods with ``style_interpolation = True`` accept more than one.
        style_set: ``style`` only, for methods with ``trains_on_style_set``: every style image of the
            benchmark task, in the dataset's order (``style`` is one of them); empty otherwise.
        degradation: the degradation's parameters (restoration tasks), e.g. ``{"sigma": 25.0}``.
        mask: ``inpaint`` only: float ``(1, H, W)``, 1 where a pixel is known and 0 where it is missing
            (missing pixels of ``image`` are 0).
        exemplars: ``solid`` only: three exemplars, one per slice axis (0, 1, 2), when they differ (``image``
            is then the first); empty when ``image`` serves all three axes. ``size`` is ``(D, H, W)``.
    """

    task: str
    item: str
    size: tuple[int, int]
    image: torch.Tensor | None = None
    content: torch.Tensor | None = None
    style: torch.Tensor | None = None
    styles: tuple[torch.Tensor, ...] = ()
    style_set: tuple[torch.Tensor, ...] = ()
    degradation: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    mask: torch.Tensor | None = None
    exemplars: tuple[torch.Tensor, ...] = ()

    def require(self, method: str, *fields: str, task: str | None = None) -> None:
        """A one-line ``ValueError`` naming ``method`` unless this is a ``task`` input (when given) with every
        one of ``fields`` set: ``adain needs task_input.style (the style task's input)``."""
        if task is not None and self.task != task:
            raise ValueError(f"{method} runs on the {task} task only, got {self.task!r}")
        missing = " and ".join(f"task_input.{f}" for f in fields if getattr(self, f) is None)
        if missing:
            raise ValueError(f"{method} needs {missing} (the {self.task} task's input)")


@dataclasses.dataclass(frozen=True)
class Example:
    """A task input plus the reference images metrics compare against (never shown to the method)."""

    input: TaskInput
    references: Mapping[str, torch.Tensor]


@dataclasses.dataclass(frozen=True)
class MetricUse:
    """One metric applied in a task: ``metric`` against the reference ``ref`` stored in column ``column``."""

    metric: str
    ref: str
    column: str = ""
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.column or self.metric


# ----------------------------------------------------------------------------------------------- degradations
def modcrop(image: torch.Tensor, factor: int) -> torch.Tensor:
    """Crop the bottom and right so that height and width are multiples of ``factor``.

    >>> modcrop(torch.zeros(3, 10, 13), 4).shape
    torch.Size([3, 8, 12])
    """
    h, w = image.shape[-2:]
    return image[..., : h - h % factor, : w - w % factor]


def add_gaussian_noise(
    image: torch.Tensor, sigma: float, *, generator: torch.Generator, clip: bool = True
) -> torch.Tensor:
    """The ``denoise`` degradation: add N(0, (σ/255)²) noise; clip to [0, 1] if ``clip``.

    Args:
        image: clean ``(3, H, W)`` in [0, 1].
        sigma: standard deviation on the 0-255 scale.
        generator: a CPU ``torch.Generator`` (noise is drawn on the CPU so it is identical on every device).
        clip: clip the result to [0, 1].
    """
    noise = torch.randn(image.shape, generator=generator, dtype=torch.float32) * (sigma / 255.0)
    noisy = image.float() + noise.to(image.device)
    return noisy.clamp(0, 1) if clip else noisy


def center_crop_resize(image: torch.Tensor, size: int) -> torch.Tensor:
    """Centre-crop to a square and resize to ``size × size`` (antialiased bicubic)."""
    h, w = image.shape[-2:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return resize(image[..., top : top + s, left : left + s], (size, size))


def _seed_from(*parts: Any) -> int:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


# ------------------------------------------------------------------------------------------------------ tasks
@dataclasses.dataclass(frozen=True)
class TextureParams(Params):
    """Texture synthesis: output ``size`` × ``size`` from one exemplar."""

    size: int = param(128, ge=8)


@dataclasses.dataclass(frozen=True)
class DenoiseParams(Params):
    """Gaussian denoising: σ on the 0-255 scale; ``clip`` the noisy image to [0, 1]."""

    sigma: float = param(25.0, ge=0)
    clip: bool = True


@dataclasses.dataclass(frozen=True)
class SR4Params(Params):
    """×4 super-resolution with the antialiased bicubic down-sampler of :func:`downsample`."""

    scale: int = param(4, choices=(4,))  # the task is defined for ×4 only


@dataclasses.dataclass(frozen=True)
class InpaintParams(Params):
    """Inpainting: ``mask`` kind (``random`` pixels or one ``region``) and the ``missing`` fraction of pixels."""

    mask: typing.Literal["random", "region"] = "random"
    missing: float = param(0.5, gt=0, lt=1)


@dataclasses.dataclass(frozen=True)
class JPEGParams(Params):
    """JPEG artefact removal: Pillow's encoder at ``quality`` (1-95) with chroma ``subsampling``."""

    quality: int = param(20, ge=1, le=95)  # above 95 libjpeg's own documentation advises against
    subsampling: typing.Literal["4:4:4", "4:2:2", "4:2:0"] = "4:2:0"


def jpeg_compress(image: torch.Tensor, *, quality: int, subsampling: str = "4:2:0") -> torch.Tensor:
    """Encode ``image`` as a baseline JPEG with Pillow and decode it again.

    Args:
        image: ``(3, H, W)`` float in [0, 1]; quantised to uint8 (round half to even after clamping)
            before encoding, as any saved image is.
        quality: the IJG quality factor, 1-95.
        subsampling: chroma subsampling, ``"4:4:4"``, ``"4:2:2"`` or ``"4:2:0"``.

    Returns:
        ``(3, H, W)`` float32 in [0, 1], the decoded image (multiples of 1/255).

    >>> x = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> y = jpeg_compress(x, quality=10)
    >>> tuple(y.shape), bool((y * 255 - (y * 255).round()).abs().max() < 1e-4)
    ((3, 16, 16), True)
    """
    import io

    import numpy as np
    from PIL import Image

    if not isinstance(quality, int) or isinstance(quality, bool) or not 1 <= quality <= 95:
        raise ValueError(f"quality must be an integer in [1, 95], got {quality!r}")
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must have shape (3, H, W), got {tuple(image.shape)}")
    u8 = (image.detach().to("cpu", torch.float32).clamp(0, 1) * 255).round().to(torch.uint8)
    buf = io.BytesIO()
    Image.fromarray(u8.permute(1, 2, 0).numpy()).save(buf, "JPEG", quality=quality, subsampling=subsampling)
    decoded = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return torch.from_numpy(decoded.copy()).permute(2, 0, 1).float().div(255.0).to(image.device)


def inpainting_mask(
    size: tuple[int, int], *, kind: str, missing: float, generator: torch.Generator
) -> torch.Tensor:
    """The ``inpaint`` mask: float ``(1, H, W)``, 1 where the pixel is known, 0 where it is missing.

    Args:
        size: ``(H, W)``.
        kind: ``"random"`` (pixels missing independently with probability ``missing``) or ``"region"``
            (one rectangle of area fraction ``missing`` and the image's aspect ratio, at a random place).
        missing: fraction of missing pixels, in (0, 1).
        generator: a CPU ``torch.Generator``.

    >>> m = inpainting_mask((40, 60), kind="region", missing=0.25, generator=torch.Generator().manual_seed(0))
    >>> int((m == 0).sum())
    600
    """
    h, w = size
    if kind == "random":
        return (torch.rand((1, h, w), generator=generator) >= missing).float()
    if kind == "region":
        rh, rw = max(1, round(h * missing**0.5)), max(1, round(w * missing**0.5))
        top = int(torch.randint(0, h - rh + 1, (1,), generator=generator))
        left = int(torch.randint(0, w - rw + 1, (1,), generator=generator))
        mask = torch.ones((1, h, w))
        mask[:, top : top + rh, left : left + rw] = 0.0
        return mask
    raise ValueError(f"kind must be 'random' or 'region', got {kind!r}")


#: what every restoration task scores against its clean image
_RESTORATION_METRICS = (MetricUse("psnr", "clean"), MetricUse("ssim", "clean"), MetricUse("lpips", "clean"))
_RESTORATION_SET_METRICS = (MetricUse("fid", "clean"), MetricUse("kid", "clean"))


class Task:
    """A task: its dataset roles, parameters, how an example is built, and its metrics."""

    name: str = ""
    description: str = ""
    roles: tuple[str, ...] = ()
    Params: type = NoParams
    primary_metric: str = ""
    default_metrics: tuple[MetricUse, ...] = ()
    #: set-level metrics (FID, KID) computed over all outputs of one method on one dataset
    set_metrics: tuple[MetricUse, ...] = ()
    min_size: int = 8
    #: a reference the method never sees (restoration: ``clean``): the intermediate outputs an iterative
    #: method reports are scored against it with the primary metric, for the report only (an oracle)
    oracle_ref: str | None = None
    #: what a job returns: ``image`` or ``volume`` (:mod:`texbench.outputs`)
    output_kind: str = "image"

    def params(self, overrides: Mapping[str, Any] | None = None) -> Any:
        return build_params(self.Params, overrides=overrides, owner=f"task {self.name}")

    def params_dict(self, params: Any) -> dict[str, Any]:
        return params_to_dict(params)

    def build(self, images: Mapping[str, torch.Tensor], *, item: str, params: Any) -> Example:
        raise NotImplementedError


class TextureTask(Task):
    name = "texture"
    description = "texture synthesis from one exemplar"
    roles = ("exemplar",)
    Params = TextureParams
    primary_metric = "sifid"
    default_metrics = (
        MetricUse("sifid", "exemplar"),
        MetricUse("gram-distance", "exemplar"),
        MetricUse("stats-distance", "exemplar"),
        # patch methods copy verbatim: report how much, beside the statistics
        MetricUse("copy-fraction", "exemplar"),
        MetricUse("copy-region", "exemplar"),
        # between the seeds of one input, after the best circular shift: shifted copies are not diverse
        MetricUse("lpips-aligned", "seeds", "diversity"),
    )
    #: FID/KID between random crops of the outputs and random crops of the exemplars: 8 crops of
    #: 64x64 per image, positions seeded by the run seed and each image's hash (texbench.metrics.fid)
    set_metrics = (
        MetricUse("fid", "exemplar", params={"crop_size": 64, "crops_per_image": 8}),
        MetricUse("kid", "exemplar", params={"crop_size": 64, "crops_per_image": 8}),
    )

    def build(self, images, *, item, params):
        ex = images["exemplar"]
        return Example(TaskInput("texture", item, (params.size, params.size), image=ex), {"exemplar": ex})


class StyleTask(Task):
    name = "style"
    description = "style transfer: a content image rendered in the style of another"
    roles = ("content", "style")
    primary_metric = "sifid"
    default_metrics = (
        MetricUse("sifid", "style", "sifid-style"),
        MetricUse("gram-distance", "style"),
        MetricUse("stats-distance", "style"),
        MetricUse("lpips", "content", "lpips-content", {"net": "alex"}),
        MetricUse("vgg-content-distance", "content"),
        MetricUse("ssim", "content", "ssim-content"),
        MetricUse("lpips-aligned", "seeds", "diversity"),  # methods that take noise, with several seeds
        # texture-transfer methods (image quilting) paste pieces of the style image: report how much,
        # so the leaderboard can rank copies after syntheses (texbench.reports.leaderboard.COPY_THRESHOLD)
        MetricUse("copy-fraction", "style"),
        MetricUse("copy-region", "style"),
    )
    #: whole outputs vs whole style images (as ArtFID's FID term)
    set_metrics = (MetricUse("fid", "style", "fid-style"), MetricUse("kid", "style", "kid-style"))

    def build(self, images, *, item, params):
        c, s = images["content"], images["style"]
        inp = TaskInput("style", item, tuple(c.shape[-2:]), content=c, style=s)
        return Example(inp, {"content": c, "style": s})


class DenoiseTask(Task):
    name = "denoise"
    description = "additive white Gaussian noise removal (sigma on 0-255)"
    roles = ("clean",)
    oracle_ref = "clean"
    Params = DenoiseParams
    primary_metric = "psnr"
    default_metrics = _RESTORATION_METRICS
    set_metrics = _RESTORATION_SET_METRICS

    def build(self, images, *, item, params):
        from texbench.imageio import image_hash

        clean = images["clean"]
        gen = torch.Generator().manual_seed(_seed_from("denoise", image_hash(clean), params.sigma))
        noisy = add_gaussian_noise(clean, params.sigma, generator=gen, clip=params.clip)
        deg = {"sigma": params.sigma, "clip": params.clip, "noise": "gaussian, seeded by the clean image hash"}
        return Example(TaskInput("denoise", item, tuple(clean.shape[-2:]), image=noisy, degradation=deg), {"clean": clean})


class SR4Task(Task):
    name = "sr4"
    description = "x4 super-resolution of antialiased-bicubic down-sampled images"
    roles = ("clean",)
    oracle_ref = "clean"
    Params = SR4Params
    primary_metric = "psnr"
    default_metrics = (
        MetricUse("psnr", "clean"),
        MetricUse("psnr-y", "clean"),
        MetricUse("ssim", "clean"),
        MetricUse("lpips", "clean"),
    )
    set_metrics = _RESTORATION_SET_METRICS
    min_size = 16

    def build(self, images, *, item, params):
        hr = modcrop(images["clean"], params.scale)
        lr = downsample(hr, params.scale)
        deg = {"scale": params.scale, "kernel": "bicubic-antialias(a=-0.5)", "crop": "modcrop bottom/right"}
        return Example(TaskInput("sr4", item, tuple(hr.shape[-2:]), image=lr, degradation=deg), {"clean": hr})


class InpaintTask(Task):
    name = "inpaint"
    description = "inpainting of missing pixels (random pixel mask or one region), mask given to the method"
    roles = ("clean",)
    oracle_ref = "clean"
    Params = InpaintParams
    primary_metric = "psnr"
    default_metrics = _RESTORATION_METRICS
    set_metrics = _RESTORATION_SET_METRICS

    def build(self, images, *, item, params):
        from texbench.imageio import image_hash

        clean = images["clean"]
        gen = torch.Generator().manual_seed(_seed_from("inpaint", image_hash(clean), params.mask, params.missing))
        mask = inpainting_mask(tuple(clean.shape[-2:]), kind=params.mask, missing=params.missing, generator=gen)
        mask = mask.to(clean.device)
        deg = {"mask": params.mask, "missing": params.missing, "seed": "clean image hash"}
        inp = TaskInput("inpaint", item, tuple(clean.shape[-2:]), image=clean * mask, degradation=deg, mask=mask)
        return Example(inp, {"clean": clean})


@dataclasses.dataclass(frozen=True)
class SolidParams(Params):
    """Solid texture synthesis: a volume of ``size``³ voxels from one exemplar."""

    size: int = param(64, ge=8)


class SolidTask(Task):
    """Solid textures: a ``size``³ RGB volume whose slices look like the exemplar in every direction.

    The output is a volume (:class:`texbench.outputs.VolumeKind`): stored as uint8 ``.npy`` and scored on
    slices, :data:`~texbench.outputs.SLICES_PER_AXIS` evenly spaced ones per axis, each against its axis'
    exemplar, averaged over the three axes. Primary metric: SiFID so averaged (the texture task's primary
    metric, on slices). ``cross-slice-gram`` is the consistency check: the Gram distance between slices of
    different axes at the same index (low when the volume looks alike in all directions). SiFID's layer
    (Inception's ``Conv2d_4a``) needs slices of at least 35 voxels a side: smaller volumes get the other
    scores and a recorded SiFID error.

    References:
        Gutiérrez, Rabin, Galerne & Hurtut, "On demand solid texture synthesis using deep 3D networks",
        Computer Graphics Forum 2019 (slice-based evaluation, the three axes).
    """

    name = "solid"
    description = "solid (3-D) texture synthesis from a 2-D exemplar, scored on slices"
    roles = ("exemplar",)
    Params = SolidParams
    primary_metric = "sifid"
    output_kind = "volume"
    default_metrics = (
        MetricUse("sifid", "exemplar"),
        MetricUse("gram-distance", "exemplar"),
        MetricUse("stats-distance", "exemplar"),
        MetricUse("gram-distance", "cross-slices", "cross-slice-gram"),
    )

    def build(self, images, *, item, params):
        ex = images["exemplar"]
        s = params.size
        return Example(TaskInput("solid", item, (s, s, s), image=ex), {"exemplar": ex})


class JPEGTask(Task):
    name = "jpeg"
    description = "JPEG artefact removal: the clean image compressed by Pillow at a stated quality"
    roles = ("clean",)
    Params = JPEGParams
    primary_metric = "psnr"
    default_metrics = _RESTORATION_METRICS
    set_metrics = _RESTORATION_SET_METRICS
    oracle_ref = "clean"

    def build(self, images, *, item, params):
        clean = images["clean"]
        compressed = jpeg_compress(clean, quality=params.quality, subsampling=params.subsampling)
        deg = {"quality": params.quality, "subsampling": params.subsampling,
               "codec": "Pillow JPEG (libjpeg, IJG tables), baseline"}
        return Example(TaskInput("jpeg", item, tuple(clean.shape[-2:]), image=compressed, degradation=deg),
                       {"clean": clean})


TASKS: dict[str, Task] = {
    t.name: t for t in (TextureTask(), StyleTask(), DenoiseTask(), SR4Task(), InpaintTask(), SolidTask())
}
TASKS[JPEGTask.name] = JPEGTask()


def task_output_kind(name: str) -> str:
    """The output kind of task ``name`` (``image`` for a name that is not a task, as plugins' own tests use)."""
    task = TASKS.get(name)
    return task.output_kind if task is not None else "image"


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; tasks: {', '.join(TASKS)}") from None
