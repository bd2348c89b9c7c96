"""FID maths (closed forms, rank deficiency, pytorch-fid's formula), statistics files, the FID/KID metric
classes, the feature cache and the fid-stats command."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from texbench.metrics.fid import (
    FID,
    FIDParams,
    feature_statistics,
    frechet_distance,
    frechet_distance_from_features,
    load_statistics,
    save_statistics,
    trace_sqrt_product,
)


def _random_cov(rng, d, rank=None):
    a = rng.standard_normal((d, rank or d))
    return a @ a.T / d


# ------------------------------------------------------------------------------------------ tier 1: maths
def test_equal_covariances_give_squared_mean_difference():
    rng = np.random.default_rng(0)
    cov = _random_cov(rng, 16)
    mu1, mu2 = rng.standard_normal(16), rng.standard_normal(16)
    expected = float(((mu1 - mu2) ** 2).sum())
    assert frechet_distance(mu1, cov, mu2, cov) == pytest.approx(expected, rel=1e-9)


def test_fid_of_a_set_with_itself_is_zero():
    rng = np.random.default_rng(1)
    f = rng.standard_normal((64, 2048)) * 3 + 1
    assert abs(frechet_distance_from_features(f, f)) <= 1e-6
    mu, sigma = feature_statistics(rng.standard_normal((200, 32)))
    assert abs(frechet_distance(mu, sigma, mu, sigma)) <= 1e-6


def test_rank_deficient_commuting_covariances_closed_form():
    # Σ1 = Q D1 Qᵀ, Σ2 = Q D2 Qᵀ commute, so Tr sqrt(Σ1Σ2) = Σ sqrt(d1 d2), even with many zero eigenvalues
    rng = np.random.default_rng(2)
    d = 60
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    d1 = np.where(np.arange(d) < 20, rng.uniform(0.5, 5, d), 0.0)
    d2 = np.where(np.arange(d) % 3 == 0, rng.uniform(0.5, 5, d), 0.0)
    s1, s2 = (q * d1) @ q.T, (q * d2) @ q.T
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    expected = float(((mu1 - mu2) ** 2).sum() + ((np.sqrt(d1) - np.sqrt(d2)) ** 2).sum())
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
    assert trace_sqrt_product(s1, s2) == pytest.approx(float(np.sqrt(d1 * d2).sum()), rel=1e-9)


def test_features_path_equals_statistics_path():
    rng = np.random.default_rng(3)
    for n, d in ((20, 50), (120, 30)):  # fewer samples than dimensions, and more
        a = rng.standard_normal((n, d))
        b = rng.standard_normal((n + 5, d)) @ rng.standard_normal((d, d)) * 0.5 + 0.3
        via_stats = frechet_distance(*feature_statistics(a), *feature_statistics(b))
        assert frechet_distance_from_features(a, b) == pytest.approx(via_stats, rel=1e-9)


def test_matches_pytorch_fid_formula_on_full_rank_covariances():
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(4)
    a = rng.standard_normal((300, 64))
    b = rng.standard_normal((300, 64)) @ rng.standard_normal((64, 64)) * 0.3 + 0.1
    ref = calculate_frechet_distance(*feature_statistics(a), *feature_statistics(b))
    assert frechet_distance(*feature_statistics(a), *feature_statistics(b)) == pytest.approx(ref, rel=1e-9)
    mu1, s1 = feature_statistics(a)
    mu2, s2 = feature_statistics(b)
    assert frechet_distance(mu1, s1, mu2, s2, method="sqrtm") == pytest.approx(ref, rel=1e-9)


def test_invalid_inputs_raise_naming_the_argument():
    eye = np.eye(3)
    bad = np.diag([1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="sigma2 is not positive semi-definite"):
        frechet_distance(np.zeros(3), eye, np.zeros(3), bad)
    with pytest.raises(ValueError, match="mu1 and mu2"):
        frechet_distance(np.zeros(3), eye, np.zeros(4), eye)
    with pytest.raises(ValueError, match="sigma1"):
        frechet_distance(np.zeros(3), np.ones((3, 2)), np.zeros(3), eye)
    # pytorch-fid's formula: a clearly imaginary trace is an error, not silently dropped
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance(np.zeros(3), eye, np.zeros(3), bad, method="sqrtm")


def test_statistics_files_round_trip_and_pytorch_fid_reads_them(tmp_path):
    from pytorch_fid.fid_score import compute_statistics_of_path

    rng = np.random.default_rng(5)
    mu, sigma = feature_statistics(rng.standard_normal((10, 4)))
    path = save_statistics(tmp_path / "ref.npz", mu, sigma, n=10, resize="pytorch-fid")
    stats = load_statistics(path)
    np.testing.assert_array_equal(stats.mu, mu)
    np.testing.assert_array_equal(stats.sigma, sigma)
    assert stats.meta == {"n": "10", "resize": "pytorch-fid"}
    m2, s2 = compute_statistics_of_path(str(path), None, 1, 4, "cpu")
    np.testing.assert_array_equal(m2, mu)
    np.testing.assert_array_equal(s2, sigma)
    np.savez_compressed(tmp_path / "pf.npz", mu=mu, sigma=sigma)  # a pytorch-fid file: no metadata
    assert load_statistics(tmp_path / "pf.npz").meta == {}


# ------------------------------------------------------------------------- tier 3: metric classes (random init)
@pytest.fixture
def random_weights(texbench_home, monkeypatch):
    """An empty cache and the recorded random-init fallback, so these tests never need the real file.

    These tests check plumbing, not numerics (parity tests live in test_fid_inception.py), so the
    network input is 96x96 instead of 299x299 to keep them fast.
    """
    from texbench.nets import inception as fe

    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    monkeypatch.setattr(fe, "INPUT_SIZE", 96)
    return texbench_home


def _images(n, size, seed):
    g = torch.Generator().manual_seed(seed)
    # smooth random images, quantised to 8 bits like saved outputs
    low = torch.rand(n, 3, size // 8, size // 8, generator=g)
    x = torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    return list((x * 255).round() / 255)


def test_fid_metric_sets_crops_and_provenance(random_weights):
    metric = FID.from_config({"crop_size": 32, "crops_per_image": 3})
    xs, ys = _images(1, 48, 0), _images(2, 40, 1)
    out = metric.compute_sets(xs, ys, seed=3)
    assert out["n_outputs"] == 3 and out["n_references"] == 6
    assert out["value"] > 0
    assert metric.compute_sets(xs, xs, seed=3)["value"] == pytest.approx(0.0, abs=1e-6)
    assert metric.provenance() == {"fid-inception": "random-init:seed=0"}
    assert metric.params_dict() == {"crop_size": 32, "crops_per_image": 3, "resize": "pytorch-fid"}


def test_fid_paths_folder_npz_and_cli(random_weights, tmp_path):
    from click.testing import CliRunner

    from texbench.cli.fid_stats import command as fid_stats
    from texbench.imageio import save_png

    a, b = tmp_path / "a", tmp_path / "b"
    for folder, imgs in ((a, _images(3, 40, 2)), (b, _images(3, 40, 3))):
        folder.mkdir()
        for i, img in enumerate(imgs):
            save_png(img, folder / f"{i}.png")
    metric = FID()
    direct = metric.compute_paths(a, b)
    assert direct["n_a"] == 3 and direct["fid-inception"] == "random-init:seed=0"
    result = CliRunner().invoke(fid_stats, [str(b), str(tmp_path / "b.npz")])
    assert result.exit_code == 0, result.output
    via_npz = metric.compute_paths(a, tmp_path / "b.npz")
    assert via_npz["value"] == pytest.approx(direct["value"], rel=1e-9)
    assert load_statistics(tmp_path / "b.npz").meta["n"] == "3"
    # statistics made with another protocol are refused, not silently compared
    with pytest.raises(ValueError, match="resize"):
        FID(FIDParams(resize="clean")).compute_paths(a, tmp_path / "b.npz")


def test_missing_weights_give_the_clear_message_and_exit_code_2(texbench_home, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from texbench.cli.fid_stats import command as fid_stats
    from texbench.imageio import save_png

    monkeypatch.delenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", raising=False)
    (tmp_path / "a").mkdir()
    save_png(_images(1, 16, 0)[0], tmp_path / "a" / "x.png")
    result = CliRunner().invoke(fid_stats, [str(tmp_path / "a"), str(tmp_path / "out.npz")])
    assert result.exit_code == 2
    assert "texbench weights fetch fid-inception" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_feature_cache_serves_repeated_images_without_the_network(random_weights, monkeypatch):
    from texbench.metrics.inception_features import extract_features
    from texbench.nets import inception as fe

    imgs = _images(3, 40, 4)
    first, _ = extract_features(imgs, dims=(64, 2048))
    monkeypatch.setattr(
        fe.FIDInceptionV3, "forward_preprocessed", lambda *a, **k: pytest.fail("features were recomputed")
    )
    again, prov = extract_features(imgs[::-1], dims=(2048, 64))
    assert prov == "random-init:seed=0"
    for d in (64, 2048):
        for f, g in zip(first[d], again[d][::-1], strict=True):
            np.testing.assert_array_equal(f, g)


def test_feature_cache_disk_store_is_atomic_and_keyed(tmp_path):
    from texbench.metrics.feature_cache import FeatureCache, image_key

    cache = FeatureCache(tmp_path / "features")
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    cache.put("net@sha256:abc/v1/pytorch-fid/2048/deadbeef", arr)
    files = list((tmp_path / "features").rglob("*"))
    assert [p.name for p in files if p.is_file()] == ["deadbeef.npy"]
    fresh = FeatureCache(tmp_path / "features")
    np.testing.assert_array_equal(fresh.get("net@sha256:abc/v1/pytorch-fid/2048/deadbeef"), arr)
    assert fresh.get("net@sha256:abc/v1/pytorch-fid/64/deadbeef") is None
    # identity: a quantised image uses the project-wide image hash; a float one its exact pixels
    x = torch.full((3, 4, 4), 0.5)
    assert image_key(x) != image_key(x + 1e-4)
    from texbench.imageio import image_hash

    q = torch.full((3, 4, 4), 128 / 255)
    assert image_key(q) == image_hash(q)


def test_kid_and_fid_share_one_inception_pass(random_weights, inception_calls):
    from texbench.metrics.kid import KID

    calls = inception_calls
    xs, ys = _images(3, 40, 5), _images(3, 40, 6)
    FID().compute_sets(xs, ys, seed=0)
    kid = KID.from_config({"subsets": 10}).compute_sets(xs, ys, seed=0)
    assert sum(calls) == 6  # each image once, although two metrics used it
    assert set(kid) >= {"value", "std", "subset_size"}


def test_registry_and_weights_entry_points():
    from texbench import registry
    from texbench.weights import all_specs

    assert registry.metrics.get("fid").kind == "set"
    assert registry.metrics.get("kid").kind == "set"
    assert registry.metrics.get("sifid").kind == "unpaired"
    spec = all_specs()["fid-inception"]
    assert spec.sha256.startswith("7ff4a85c") and spec.size == 87335461


def test_tasks_use_sifid_fid_and_kid():
    from texbench.tasks import get_task

    tex = get_task("texture")
    assert tex.primary_metric == "sifid"
    assert {u.metric for u in tex.set_metrics} == {"fid", "kid"}
    assert all(u.params["crop_size"] > 0 for u in tex.set_metrics)
    assert "sifid" in {u.metric for u in get_task("style").default_metrics}
    for name in ("style", "denoise", "sr4"):
        assert {u.metric for u in get_task(name).set_metrics} == {"fid", "kid"}
