"""Johnson et al. (ECCV 2016): architecture facts, the trained-weights cache contract, and that training works.

Training runs are tiny (tens of iterations on 32-48 px crops, a quarter-width network) and use the
builtin-train images; the loss network is the real VGG-16 when cached, else the seeded random one.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import require_weights
from torch import nn

from texbench.ops.gram import gram_matrix
from texbench.synthesizers import johnson as J
from texbench.tasks import get_task

CPU = torch.device("cpu")


def _photo(name: str, box: tuple[int, int, int, int] | None = None) -> torch.Tensor:
    import skimage.data

    arr = getattr(skimage.data, name)().astype(np.float32) / 255.0
    img = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
    if box is not None:
        top, left, h, w = box
        img = img[:, top : top + h, left : left + w].contiguous()
    return img


def _style_input(content: torch.Tensor, style: torch.Tensor):
    t = get_task("style")
    return t.build({"content": content, "style": style}, item="x", params=t.params()).input


@pytest.fixture
def random_vgg(monkeypatch):
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")


# ----------------------------------------------------------------------------------------- architecture
def _paper_style_param_count() -> int:
    """Parameters of the paper's style network from its table (instance norm: scale and shift per channel)."""

    def conv(cin, cout, k):
        return cin * cout * k * k + cout

    def norm(c):
        return 2 * c

    n = conv(3, 32, 9) + norm(32) + conv(32, 64, 3) + norm(64) + conv(64, 128, 3) + norm(128)
    n += 5 * (2 * (conv(128, 128, 3) + norm(128)))
    n += conv(128, 64, 3) + norm(64) + conv(64, 32, 3) + norm(32)  # stride-1/2 convs
    n += conv(32, 3, 9)
    return n


def test_style_net_parameter_count_matches_the_paper_table():
    for norm in ("instance", "batch"):  # batch norm's running statistics are buffers, not parameters
        net = J.StyleNet(1.0, norm)
        assert sum(p.numel() for p in net.parameters()) == _paper_style_param_count()


def test_style_net_layers_strides_and_sizes():
    net = J.StyleNet(1.0)
    convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    # c9s1-32, d64, d128, 5 x (2 x 3x3), u64, u32, c9s1-3
    assert [(m.kernel_size[0], m.stride[0], m.out_channels) for m in convs] == (
        [(9, 1, 32), (3, 2, 64), (3, 2, 128)] + [(3, 1, 128)] * 10 + [(3, 2, 64), (3, 2, 32), (9, 1, 3)]
    )
    assert [type(m) for m in convs[-3:-1]] == [nn.ConvTranspose2d] * 2
    assert all(m.padding == (0, 0) for m in convs[3:13]), "residual convs are unpadded (reflect-start layout)"
    assert net.reflect_pad == 40
    # the paper's 256x256 input: 336 after the 40-pixel padding, 84 at 1/4, 64 after five residual blocks
    x = torch.rand(1, 3, 256 + 80, 256 + 80)
    inner = J.StyleNet(0.125).net[:3](x)  # sizes depend on kernels and strides only
    assert inner.shape[-2:] == (84, 84)
    assert J.StyleNet(0.125).net[3:8](inner).shape[-2:] == (64, 64)
    for h, w in [(48, 40), (33, 29), (64, 64)]:
        y = J.StyleNet(0.25)(torch.rand(2, 3, h, w))
        assert y.shape == (2, 3, h, w) and 0 <= y.min() and y.max() <= 1


def test_sr_net_upsamples_by_four():
    net = J.SRNet(1.0)
    convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert [(m.kernel_size[0], m.stride[0], m.out_channels) for m in convs] == (
        [(9, 1, 64)] + [(3, 1, 64)] * 8 + [(3, 2, 64), (3, 2, 64), (9, 1, 3)]
    )
    for h, w in [(72, 72), (13, 17)]:
        assert J.SRNet(0.25)(torch.rand(1, 3, h, w)).shape == (1, 3, 4 * h, 4 * w)


def test_gram_and_losses_closed_forms():
    f = torch.randn(2, 4, 5, 6)
    g = gram_matrix(f, normalize=J.GRAM_NORM)
    torch.testing.assert_close(g[1], f[1].reshape(4, -1) @ f[1].reshape(4, -1).T / (4 * 30))
    targets = {"relu1_2": g[:1]}
    assert J.style_loss({"relu1_2": f[:1]}, targets).item() == pytest.approx(0.0, abs=1e-10)
    frob = J.style_loss({"relu1_2": f[1:]}, targets)
    torch.testing.assert_close(J.style_loss({"relu1_2": f[1:]}, targets, layer_norm="mse"), frob / 16)
    assert J.total_variation(torch.full((1, 3, 8, 8), 0.3)).item() == 0.0
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 3, 8, 8) / 10
    assert J.total_variation(ramp).item() == pytest.approx(0.01)


def test_bad_params_and_missing_training_folder_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="norm"):
        J.JohnsonStyle.from_config("tiny", {"norm": "group"})
    with pytest.raises(ValueError, match="train_size"):
        J.JohnsonSR.from_config("tiny", {"train_size": 30})
    missing = str(tmp_path / "coco" / "train2014")
    with pytest.raises(ValueError, match="train2014.zip"):
        J.TrainingImages(missing)


def test_builtin_train_is_disjoint_from_the_test_sets():
    from texbench import registry
    from texbench.imageio import image_hash

    train = {image_hash(it.load()) for it in registry.datasets.get("builtin-train")().items()}
    assert len(train) == 4
    for name in ("builtin-content", "builtin-clean", "builtin-styles", "builtin-textures"):
        test = {image_hash(it.load()) for it in registry.datasets.get(name)().items()}
        assert not train & test, name


# ------------------------------------------------------------------------------------------- contracts
def test_style_cache_hit_and_new_style_trains_anew(random_vgg):
    content = _photo("astronaut", (100, 100, 40, 48))
    inp_a = _style_input(content, _photo("coffee", (0, 0, 64, 64)))
    m1 = J.JohnsonStyle.from_config("tiny", {"iterations": 2})
    m1.prepare(inp_a, seed=0, device=CPU)
    a = m1.run(inp_a, seed=0, device=CPU)
    info = m1.pop_info()
    assert info["train_cached"] is False and info["train_seconds"] > 0
    assert len(info["train_loss_curve"]) == 2 and info["inference_seconds"] > 0
    assert a.shape == (3, 40, 48) and 0 <= a.min() and a.max() <= 1
    prov = m1.provenance()
    assert prov["vgg16"].startswith(("random-init:", "vgg16-")) and prov["trained"].startswith("trained:")

    m2 = J.JohnsonStyle.from_config("tiny", {"iterations": 2})
    b = m2.run(inp_a, seed=7, device=CPU)  # run() prepares by itself; the job seed does not enter
    assert m2.pop_info()["train_cached"] is True
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert m2.provenance() == prov

    inp_b = _style_input(content, _photo("chelsea", (0, 0, 64, 64)))
    c = m2.run(inp_b, seed=0, device=CPU)
    assert m2.pop_info()["train_cached"] is False
    assert m2.provenance()["trained"] != prov["trained"]
    assert not torch.equal(a, c)


def test_sr_one_training_serves_every_image(random_vgg):
    t = get_task("sr4")
    ex1 = t.build({"clean": _photo("astronaut", (0, 0, 64, 48))}, item="a", params=t.params())
    ex2 = t.build({"clean": _photo("chelsea", (0, 0, 32, 40))}, item="c", params=t.params())
    m = J.JohnsonSR.from_config("tiny", {"iterations": 2})
    y1 = m.run(ex1.input, seed=0, device=CPU)
    assert m.pop_info()["train_cached"] is False
    key = m.provenance()["trained"]
    m2 = J.JohnsonSR.from_config("tiny", {"iterations": 2})
    y2 = m2.run(ex2.input, seed=0, device=CPU)
    assert m2.pop_info()["train_cached"] is True and m2.provenance()["trained"] == key
    assert y1.shape == (3, 64, 48) and y2.shape == (3, 32, 40)


def test_sr_pixel_warm_start_switches_to_the_feature_loss_at_pixel_steps(random_vgg):
    from texbench.synthesizers.johnson_networks import TrainingImages

    m = J.JohnsonSR.from_config("tiny", {"pixel_steps": 2})
    net = J._seeded_init(m.build_net, 0)
    step = m.training_step(net, J.loss_network(m._loss_layers(), CPU), TrainingImages("builtin-train"), CPU)
    gen = torch.Generator().manual_seed(0)
    terms = [step(gen)[1] for _ in range(4)]
    assert [set(t) for t in terms] == [{"pixel"}, {"pixel"}, {"content", "tv"}, {"content", "tv"}]
    # the warm start's loss is the per-pixel MSE of the network's output against the high-resolution crop
    gen = torch.Generator().manual_seed(0)
    hr = TrainingImages("builtin-train").random_crops(m.params.batch_size, m.params.train_size, gen)
    step = m.training_step(net, J.loss_network(m._loss_layers(), CPU), TrainingImages("builtin-train"), CPU)
    loss, parts = step(torch.Generator().manual_seed(0))
    expected = (net(J.downsample(hr, 4)) - hr).pow(2).mean()
    torch.testing.assert_close(loss, expected)
    assert parts["pixel"] == pytest.approx(expected.item())
    # and the paper's setting (pixel_steps = 0) trains on the feature loss from the first step
    paper = J.JohnsonSR.from_config("tiny")
    step = paper.training_step(net, J.loss_network(m._loss_layers(), CPU), TrainingImages("builtin-train"), CPU)
    assert set(step(torch.Generator().manual_seed(0))[1]) == {"content", "tv"}


def test_sr_adam_starts_afresh_at_the_switch(random_vgg, monkeypatch):
    import texbench.synthesizers.johnson_networks as JN

    made = []
    real_adam = torch.optim.Adam

    def counting_adam(*args, **kwargs):
        made.append(1)
        return real_adam(*args, **kwargs)

    monkeypatch.setattr(JN.torch.optim, "Adam", counting_adam)
    m = J.JohnsonSR.from_config("tiny", {"iterations": 3, "pixel_steps": 2})
    m.trained_net(CPU)
    assert len(made) == 2 and m._last["train_final_terms"].keys() == {"content", "tv"}
    made.clear()
    J.JohnsonSR.from_config("tiny", {"iterations": 2, "pixel_steps": 2}).trained_net(CPU)
    assert len(made) == 1, "no restart when training ends before the switch"


def test_loss_network_is_cached_per_device_and_never_moved(random_vgg):
    """A shared loss network handed out for one device stays there when another device asks for one."""
    J._shared_vgg.cache_clear()
    try:
        cpu = J.loss_network(("relu1_2",), CPU)
        meta = J.loss_network(("relu1_2",), torch.device("meta"))
        assert meta is not cpu and next(meta.parameters()).device.type == "meta"
        assert next(cpu.parameters()).device == CPU and cpu.mean.device == CPU, "the CPU network was moved"
        assert J.loss_network(("relu1_2",), "cpu") is cpu
    finally:
        J._shared_vgg.cache_clear()


# ----------------------------------------------------------------------------------- training works
def _held_out_objective_drop(overrides: dict) -> tuple[float, float]:
    m = J.JohnsonStyle.from_config("tiny", overrides)
    style = _photo("coffee")
    vgg = J.loss_network(m._loss_layers(), CPU)
    targets = m.style_targets(style, vgg)
    s = m.params.train_size
    astronaut = _photo("astronaut")  # a test image: never among the training images
    held = torch.stack([astronaut[:, i : i + s, j : j + s] for i, j in [(100, 100), (300, 200), (50, 400)]])
    untrained = J._seeded_init(m.build_net, m.params.train_seed).eval()
    trained = m.trained_net(style, CPU)
    with torch.no_grad():
        before = m.objective(untrained, held, vgg, targets)[0].item()
        after = m.objective(trained, held, vgg, targets)[0].item()
    return before, after


def test_style_training_lowers_the_held_out_objective_random_vgg(random_vgg, monkeypatch):
    import texbench.weights

    # force the random loss network even where real weights are cached
    monkeypatch.setattr(texbench.weights, "find_cached", lambda spec, path=None: None)
    J._shared_vgg.cache_clear()
    try:
        before, after = _held_out_objective_drop({"iterations": 12})
    finally:
        J._shared_vgg.cache_clear()
    assert after < 0.8 * before, (before, after)


def test_style_training_lowers_the_held_out_objective_real_vgg():
    from texbench.nets import backbones as lw
    from texbench.weights import find_cached

    if all(find_cached(spec) is None for spec in lw.BACKBONE_SPECS["vgg"]):
        require_weights(lw.VGG16_FLAX)  # skips, naming the weights to fetch
    J._shared_vgg.cache_clear()
    before, after = _held_out_objective_drop({"iterations": 12})
    assert after < 0.8 * before, (before, after)
