"""KID against closed forms: a case worked by hand, KID(X, X), and the estimator's unbiasedness.

KID (Bińkowski et al., ICLR 2018) is the unbiased estimate of the squared MMD with the kernel
k(a, b) = (aᵀb / d + 1)³:  mean over i≠j of k(xᵢ, xⱼ) + mean over i≠j of k(yᵢ, yⱼ) − 2 mean over i, j of
k(xᵢ, yⱼ). With subsets as large as the sets, every subset is a permutation, so the value is exact.
"""

from __future__ import annotations

import numpy as np

from texbench.metrics.kid import kernel_inception_distance


def test_three_samples_worked_by_hand():
    # d = 1, so k(a, b) = (ab + 1)^3.
    # xx, i != j: (0,1) 1, (0,2) 1, (1,2) 27 -> 2 * 29 / 6 = 29/3
    # yy, i != j: (1,2) 27, (1,3) 64, (2,3) 343 -> 2 * 434 / 6 = 434/3
    # xy, all 9: 1+1+1 + 8+27+64 + 27+125+343 = 597 -> 597/9 = 199/3
    # MMD^2 = 29/3 + 434/3 - 2 * 199/3 = 65/3
    out = kernel_inception_distance([[0.0], [1.0], [2.0]], [[1.0], [2.0], [3.0]], subsets=5)
    assert abs(out["value"] - 65 / 3) < 1e-12
    assert out["std"] == 0.0 and out["subset_size"] == 3


def test_kid_of_a_set_with_itself_is_its_small_negative_closed_form():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8))
    k = (x @ x.T / x.shape[1] + 1.0) ** 3
    n = len(x)
    off, diag = k.sum() - np.trace(k), np.trace(k)
    expected = 2 * off / (n * (n - 1)) - 2 * (off + diag) / n**2  # the cross term keeps the diagonal
    value = kernel_inception_distance(x, x, subsets=3)["value"]
    assert abs(value - expected) < 1e-9 * abs(expected)
    assert expected < 0  # why KID can be negative: an unbiased estimate of a quantity that is 0 here
    far = kernel_inception_distance(x, x + 1.0, subsets=3)["value"]
    assert abs(value) < 0.1 * far  # about 0 next to a set shifted by 1 (measured: 0.44 vs 7.25)


def test_the_estimator_is_unbiased_where_the_biased_one_is_not():
    rng = np.random.default_rng(1)
    n, d, draws = 6, 4, 3000
    unbiased, biased = [], []
    for _ in range(draws):
        x, y = rng.normal(size=(n, d)), rng.normal(size=(n, d))
        unbiased.append(kernel_inception_distance(x, y, subsets=1)["value"])
        kxx, kyy, kxy = ((a @ b.T / d + 1.0) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        biased.append(kxx.mean() + kyy.mean() - 2 * kxy.mean())  # the V-statistic keeps the diagonals
    u, b = np.asarray(unbiased), np.asarray(biased)
    sem_u, sem_b = u.std(ddof=1) / np.sqrt(draws), b.std(ddof=1) / np.sqrt(draws)
    assert abs(u.mean()) < 4 * sem_u  # same distribution: MMD^2 = 0, and the estimate averages to it
    assert b.mean() > 10 * sem_b  # the biased estimate does not: the test can tell them apart
