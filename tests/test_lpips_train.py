"""LPIPS calibration (texbench.calibration): BAPPS loader, 2AFC/JND scores, lin training on the synthetic
2AFC set, atomic checkpoints, CLI."""

from __future__ import annotations

import os
import shutil
import stat

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from texbench import calibration as lt
from texbench.cli import main
from texbench.nets import backbones as lw
from texbench.nets.lpips import LIN_SPECS, LPIPSNet, load_calibrated
from texbench.weights import find_cached


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A small SYNTHETIC BAPPS-layout set written through the CLI (built-in images, proxy observer)."""
    out = tmp_path_factory.mktemp("bapps") / "synthetic"
    res = CliRunner().invoke(
        main, ["lpips", "make-2afc", str(out), "--n-train", "160", "--n-val", "160", "--n-jnd", "40", "--seed", "1"]
    )
    assert res.exit_code == 0, res.output
    return out


# ------------------------------------------------------------------------------------ layout, loader
def test_make_2afc_writes_exact_bapps_layout(synthetic):
    cats = sorted(d.name for d in (synthetic / "2afc" / "train").iterdir())
    assert cats == ["synthetic_natural", "synthetic_procedural"]
    for split, n in (("train", 80), ("val", 80)):
        for cat in cats:
            d = synthetic / "2afc" / split / cat
            assert sorted(p.name for p in d.iterdir()) == ["judge", "p0", "p1", "ref"]
            assert len(list((d / "ref").glob("*.png"))) == n and len(list((d / "judge").glob("*.npy"))) == n
    jnd = synthetic / "jnd" / "val" / "synthetic_natural"
    assert sorted(p.name for p in jnd.iterdir()) == ["p0", "p1", "same"]
    assert "NOT human judgments" in (synthetic / "SYNTHETIC.md").read_text()
    ds = lt.TwoAFCDataset(lt.find_category_dirs(synthetic, "2afc", "val"))
    item = ds[0]
    assert item["ref"].shape == (3, 64, 64) and 0 <= float(item["judge"]) <= 1
    # 5 simulated observers on val: judgments are multiples of 1/5
    js = np.array([float(ds[i]["judge"]) for i in range(0, len(ds), 7)])
    np.testing.assert_allclose(js * 5, np.round(js * 5), atol=1e-6)


def test_proxy_observer_prefers_the_less_distorted_patch(synthetic):
    """The documented proxy agrees with its own majority judgments far above chance."""
    ds = lt.TwoAFCDataset(lt.find_category_dirs(synthetic, "2afc", "val"))
    d0, d1, j = [], [], []
    for i in range(0, len(ds), 2):
        it = ds[i]
        d0.append(lt.proxy_distance(it["ref"], it["p0"]))
        d1.append(lt.proxy_distance(it["ref"], it["p1"]))
        j.append(float(it["judge"]))
    assert lt.score_2afc(np.array(d0), np.array(d1), np.array(j)) > 0.75


def test_malformed_directories_raise_clear_errors(synthetic, tmp_path):
    bad = tmp_path / "cat"
    shutil.copytree(synthetic / "2afc" / "val" / "synthetic_natural", bad)
    shutil.rmtree(bad / "judge")
    with pytest.raises(lt.BAPPSFormatError, match="missing sub-folder.*judge"):
        lt.TwoAFCDataset([bad])
    (bad / "judge").mkdir()
    np.save(bad / "judge" / "000000.npy", np.array([0.5]))
    with pytest.raises(lt.BAPPSFormatError, match="different items"):
        lt.TwoAFCDataset([bad])
    with pytest.raises(lt.BAPPSFormatError, match="no BAPPS 2afc data"):
        lt.find_category_dirs(tmp_path / "cat" / "ref", "2afc")


# ------------------------------------------------------------------------------------- scores
def test_score_2afc_ties_count_half():
    d0 = np.array([0.1, 0.3, 0.2, 0.5])
    d1 = np.array([0.2, 0.3, 0.1, 0.4])
    judge = np.array([0.0, 1.0, 0.6, 0.2])
    # agree fully, tie (1/2), d1 closer -> judge, d1 closer -> judge
    assert lt.score_2afc(d0, d1, judge) == pytest.approx((1.0 + 0.5 + 0.6 + 0.2) / 4)


def test_jnd_map_matches_reference_formula():
    lpips_ref = pytest.importorskip("lpips")
    rng = np.random.default_rng(0)
    ds = rng.random(200)
    same = np.clip(np.round(3 * (1 - ds) + rng.normal(0, 1, 200)) / 3, 0, 1)
    order = np.argsort(ds)
    s = same[order]
    tp, fp = np.cumsum(s), np.cumsum(1 - s)
    want = lpips_ref.voc_ap(tp / s.sum(), tp / (tp + fp))
    assert lt.jnd_map(ds, same) == pytest.approx(want, abs=1e-12)
    assert lt.jnd_map(np.array([0.1, 0.2, 0.3]), np.array([0.0, 0.0, 1.0])) == pytest.approx(1 / 3)


def test_ranking_head_shapes():
    head = lt.RankingHead()
    p = head(torch.rand(7), torch.rand(7))
    assert p.shape == (7,) and torch.all((p > 0) & (p < 1))


def test_learning_rate_schedule_is_the_papers():
    cfg = lt.TrainConfig(lr=1e-4, epochs=5, epochs_decay=5)
    rates = [lt.lr_for_epoch(cfg, e) for e in range(1, 11)]
    np.testing.assert_allclose(rates, [1e-4] * 6 + [0.8e-4, 0.6e-4, 0.4e-4, 0.2e-4])


# ----------------------------------------------------------------------------------- training
@pytest.fixture
def backbone_available(monkeypatch):
    """Real AlexNet when cached; otherwise the recorded seeded random fallback."""
    if not any(find_cached(s) for s in lw.BACKBONE_SPECS["alex"]):
        monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")


def _val_2afc(model: LPIPSNet, root) -> float:
    model.eval()

    def dist(a, b):
        with torch.inference_mode():
            return model(a, b)

    return lt.evaluate(dist, root, modes=("2afc",), progress=False)["2afc"]["mean"]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_lin_training_beats_uncalibrated_start(synthetic, tmp_path, backbone_available):
    """lin: frozen backbone, linear layers from all-equal; held-out 2AFC must rise above the start.

    Uses an accelerated rate (3e-2 instead of the paper's 1e-4) so that ~120 steps suffice.
    """
    uniform = _val_2afc(LPIPSNet("alex", lin="uniform"), synthetic)
    cfg = lt.TrainConfig(net="alex", variant="lin", epochs=15, epochs_decay=0, batch_size=20, lr=3e-2,
                         lin_init="uniform", seed=0)  # fmt: skip
    final = lt.train(cfg, lt.find_category_dirs(synthetic, "2afc", "train"), tmp_path / "run", progress=False,
                     log=lambda s: None)  # fmt: skip
    model, prov = load_calibrated(final, "alex")
    assert all(float(w.min()) >= 0 for w in model.lins)
    assert not all(torch.allclose(w, torch.ones_like(w)) for w in model.lins)
    trained = _val_2afc(model, synthetic)
    assert trained > uniform + 0.005, (uniform, trained)


def test_training_resumes_exactly(synthetic, tmp_path, backbone_available):
    """Stopping after 3 of 4 steps (mid-epoch) and resuming gives the same weights as an uninterrupted run."""
    data = [synthetic / "2afc" / "train" / "synthetic_procedural"]
    cfg = dict(net="alex", variant="lin", epochs=1, epochs_decay=1, batch_size=40, lr=1e-2, seed=3)
    quiet = dict(progress=False, log=lambda s: None)
    full = lt.train(lt.TrainConfig(**cfg), data, tmp_path / "a", **quiet)
    partial = lt.train(lt.TrainConfig(**cfg, max_steps=3), data, tmp_path / "b", **quiet)
    assert partial.name == "latest.pth" and not (tmp_path / "b" / "lpips_alex_lin.pth").exists()
    ck = torch.load(partial, weights_only=True)
    assert (ck["epoch"], ck["step_in_epoch"], ck["total_steps"]) == (2, 1, 3)
    resumed = lt.train(lt.TrainConfig(**cfg), data, tmp_path / "b", **quiet)
    a, b = torch.load(full, weights_only=True), torch.load(resumed, weights_only=True)
    for wa, wb in zip(a["lins"], b["lins"], strict=True):
        torch.testing.assert_close(wa, wb, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="different configuration"):
        lt.train(lt.TrainConfig(**{**cfg, "lr": 2e-3}), data, tmp_path / "b", **quiet)


def test_scratch_checkpoint_holds_the_trained_backbone(synthetic, tmp_path):
    data = [synthetic / "2afc" / "train" / "synthetic_procedural"]
    cfg = lt.TrainConfig(net="alex", variant="scratch", epochs=1, epochs_decay=0, batch_size=8, load_size=32,
                         lr=1e-3, max_steps=1)  # fmt: skip
    ck = torch.load(lt.train(cfg, data, tmp_path, progress=False, log=lambda s: None), weights_only=True)
    start = LPIPSNet("alex", pretrained_backbone=False, seed=0).features.state_dict()
    assert ck["features"] is not None and set(ck["features"]) == set(start)
    assert any(not torch.equal(ck["features"][k], start[k]) for k in start)


def test_checkpoints_get_the_umask_mode_and_a_failed_save_leaves_no_temporary_file(synthetic, tmp_path,
                                                                                  monkeypatch):
    """Checkpoints are written through texbench.files: readable by the machine's other users like any file
    (0644 under umask 022, not mkstemp's 0600), and a save that fails halfway keeps the previous one."""
    data = [synthetic / "2afc" / "train" / "synthetic_procedural"]
    cfg = dict(net="alex", variant="scratch", epochs=1, epochs_decay=0, batch_size=8, load_size=32, lr=1e-3)
    quiet = dict(progress=False, log=lambda s: None)
    old_umask = os.umask(0o022)
    try:
        latest = lt.train(lt.TrainConfig(**cfg, max_steps=1), data, tmp_path, **quiet)
    finally:
        os.umask(old_umask)
    assert latest.name == "latest.pth" and stat.S_IMODE(latest.stat().st_mode) == 0o644
    before = latest.read_bytes()

    def save_half(obj, f, *args, **kwargs):
        f.write(b"the first half of a checkpoint")
        raise OSError("no space left on device")

    monkeypatch.setattr(torch, "save", save_half)
    with pytest.raises(OSError, match="no space left"):
        lt.train(lt.TrainConfig(**cfg, max_steps=2), data, tmp_path, **quiet)
    assert latest.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "latest.pth"]


# ---------------------------------------------------------------------------------------- CLI
def test_eval_cli_prints_per_category_table(synthetic, backbone_available):
    if find_cached(LIN_SPECS["alex"]) is None:
        pytest.skip("official LPIPS linear weights not cached")
    res = CliRunner().invoke(main, ["lpips", "eval", str(synthetic), "--net", "alex", "--batch-size", "40"])
    assert res.exit_code == 0, res.output
    assert "synthetic" in res.output and "2AFC synthetic_natural" in res.output
    assert "JND synthetic_procedural" in res.output and "2AFC mean" in res.output


def test_cli_reports_malformed_data(tmp_path):
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(main, ["lpips", "eval", str(tmp_path / "empty")])
    assert res.exit_code != 0 and "no BAPPS" in res.output
