"""sFID (Nash et al. 2021): the Fréchet distance between sets of *spatial* Inception features.

FID's pool3 vector averages away where things are; sFID keeps a spatial map instead. As defined by the
authors' evaluation code (the TF Inception graph's ``mixed_6/conv`` tensor, ``[..., :7]``, reshaped to
one vector per image; also guided-diffusion's ``evaluations/evaluator.py``), each image gives the first
7 channels of the 1×1 branch of the 17×17 block ``Mixed_6d`` (TF ``mixed_6``) after batch norm and
ReLU, at the 299×299 input: 7 × 17 × 17 = 2023 dims per image (flattened here in ``(C, h, w)`` order,
the TF code in ``(h, w, C)``: a fixed permutation of the coordinates, which leaves the Fréchet
distance unchanged). The two sets' means and covariances are compared with
:func:`texbench.metrics.fid.frechet_distance` (exact trace term also when the covariance is
rank-deficient, i.e. with fewer than 2024 images).

The features come from the same Inception pass as FID and KID (:data:`texbench.metrics.inception_features.SET_FEATURES`),
with the same preprocessing (``resize``) and crop protocol, so sFID next to FID costs no second pass.

References:
    Nash, Menick, Dieleman & Battaglia, "Generating images with sparse representations", ICML 2021.
"""

from __future__ import annotations

from texbench.metrics.fid import FID, FIDParams
from texbench.nets.inception import SFID_CHANNELS

__all__ = ["SFID", "SFID_DIM"]

#: 7 channels × 17 × 17 positions (the 299×299 input of every set metric)
SFID_DIM = SFID_CHANNELS * 17 * 17


class SFID(FID):
    """Spatial FID between a set of outputs and a set of references (lower is better).

    Same parameters, statistics files (2023-d), folders and crop protocol as :class:`~texbench.metrics.fid.FID`;
    only the features differ (module docstring). Like FID, biased upwards for small sets: with fewer
    images than 2023 dimensions the covariance is rank-deficient (exactly handled, but an estimate of
    little reliability).

    References:
        Nash et al., "Generating images with sparse representations", ICML 2021.
    """

    name = "sfid"
    description = "Spatial FID (Nash et al. 2021): Fréchet distance of Mixed_6d 1x1 features (7x17x17), set-level"
    higher_is_better = False
    references = "Nash et al., Generating images with sparse representations, ICML 2021"
    Params = FIDParams
    feature = "mixed_6d_1x1_7"
    feature_dim = SFID_DIM
