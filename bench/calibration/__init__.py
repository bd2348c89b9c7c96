"""LPIPS calibration on human 2AFC judgments: BAPPS loaders, training, evaluation, a synthetic stand-in.

An application on top of texbench (``texbench lpips train|eval|make-2afc``), not a metric: the metric
reads the checkpoints it writes (``texbench score lpips --weights``). Modules: :mod:`~.bapps` (the data),
:mod:`~.scoring` (2AFC score, JND mAP), :mod:`~.training`, :mod:`~.synthetic` (the test fixture).

The procedure is the paper's (Zhang et al. 2018, Sec. 3 and the reference ``train.py``):

* data: BAPPS 2AFC triplets ``(ref, p0, p1, judge)`` where ``judge`` ∈ [0, 1] is the fraction of
  humans who found ``p1`` closer to ``ref``; patches are loaded at 64×64;
* model: an ``LPIPSNet`` (:mod:`texbench.metrics.lpips`) whose distances ``d0 = d(ref, p0)`` and
  ``d1 = d(ref, p1)`` feed a small ranking head ``G`` (1×1 convolutions 5→32→32→1 with LeakyReLU(0.2)
  and a sigmoid on ``(d0, d1, d0 − d1, d0/(d1 + ε), d1/(d0 + ε))``, ε = 0.1); the loss is binary
  cross-entropy between ``G`` and ``judge``; dropout 0.5 on the squared feature differences;
* variants: ``lin`` (pretrained backbone frozen, linear layers learned), ``tune`` (pretrained backbone
  fine-tuned too), ``scratch`` (backbone from a seeded random initialisation, all learned);
* optimiser: Adam, lr 1e-4, β = (0.5, 0.999), batch 50; 5 epochs at the base rate then 5 epochs with
  the rate decreased linearly (by lr/5 after each of them); after every step the linear weights are
  projected onto w ≥ 0;
* evaluation: 2AFC score ``mean((d0 < d1)(1 − judge) + (d1 < d0) judge + ½ [d0 = d1])`` per category,
  JND as the average precision of ``same`` judgments ranked by increasing distance (VOC area under the
  interpolated precision-recall curve).

Known deviation: the reference clamps *every* 1×1 convolution of the metric network to be non-negative,
which for ``squeeze`` with ``tune`` also clamps SqueezeNet's own 1×1 layers; texbench clamps only the
LPIPS linear layers, as the paper describes.

The BAPPS dataset cannot be downloaded here; :func:`make_synthetic_2afc` writes a small **synthetic**
dataset in the exact BAPPS layout as a test fixture (see its docstring for the proxy observer). Its
numbers say nothing about human perception.

References:
    Zhang, Isola, Efros, Shechtman, Wang. "The Unreasonable Effectiveness of Deep Features as a
    Perceptual Metric." CVPR 2018. https://github.com/richzhang/PerceptualSimilarity
"""

from __future__ import annotations

from texbench.calibration.bapps import BAPPSFormatError, JNDDataset, TwoAFCDataset, find_category_dirs
from texbench.calibration.scoring import (
    BASELINES,
    dssim_lab_distance,
    evaluate,
    evaluate_baselines,
    evaluate_lpips,
    format_table,
    human_ceiling,
    jnd_map,
    l2_lab_distance,
    score_2afc,
)
from texbench.calibration.synthetic import DISTORTIONS, make_synthetic_2afc, proxy_distance
from texbench.calibration.training import (
    RankingHead,
    TrainConfig,
    build_model,
    calibrated_state,
    lr_for_epoch,
    train,
)

__all__ = [
    "BASELINES",
    "DISTORTIONS",
    "BAPPSFormatError",
    "JNDDataset",
    "RankingHead",
    "TrainConfig",
    "TwoAFCDataset",
    "build_model",
    "calibrated_state",
    "dssim_lab_distance",
    "evaluate",
    "evaluate_baselines",
    "evaluate_lpips",
    "find_category_dirs",
    "format_table",
    "human_ceiling",
    "jnd_map",
    "l2_lab_distance",
    "lr_for_epoch",
    "make_synthetic_2afc",
    "proxy_distance",
    "score_2afc",
    "train",
]
