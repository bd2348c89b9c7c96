"""Conditional instance normalisation (Dumoulin et al.): one network for N styles, style interpolation, the
whole style set in a benchmark's jobs, and that training lowers the style loss on held-out content."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from texbench.synthesizers import cin_style as CIN
from texbench.synthesizers import johnson_networks as JN
from texbench.synthesizers.johnson import loss_network
from texbench.tasks import TaskInput

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _random_ok(monkeypatch):
    # the real VGG-16 is used when cached; the seeded random one otherwise
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")


def _photo(name: str, size: int) -> torch.Tensor:
    import skimage.data

    from texbench.ops.resize import resize

    arr = getattr(skimage.data, name)().astype(np.float32) / 255.0
    return resize(torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))), (size, size))


def _styles() -> list[torch.Tensor]:
    from texbench import registry

    return [it.load()[:, :64, :64].contiguous() for it in registry.datasets.get("builtin-styles")().items()]


def _input(content: torch.Tensor, style: torch.Tensor, style_set=(), styles=()) -> TaskInput:
    return TaskInput("style", "x", tuple(content.shape[-2:]), content=content, style=style,
                     style_set=tuple(style_set), styles=tuple(styles))


def test_conditional_norm_selects_and_mixes_per_style_parameters():
    norm = CIN.ConditionalInstanceNorm2d(4, 3)
    with torch.no_grad():
        norm.gamma.copy_(torch.arange(12.0).view(3, 4))
        norm.beta.copy_(-torch.arange(12.0).view(3, 4))
    x = torch.randn(2, 4, 5, 6)
    plain = torch.nn.functional.instance_norm(x, eps=1e-5)
    norm.set_mix(torch.tensor([0.0, 1.0, 0.0]))
    torch.testing.assert_close(norm(x), plain * norm.gamma[1].view(1, 4, 1, 1) + norm.beta[1].view(1, 4, 1, 1))
    norm.set_mix(torch.tensor([0.5, 0.0, 0.5]))
    g, b = (norm.gamma[0] + norm.gamma[2]) / 2, (norm.beta[0] + norm.beta[2]) / 2
    torch.testing.assert_close(norm(x), plain * g.view(1, 4, 1, 1) + b.view(1, 4, 1, 1))
    norm.set_mix(torch.eye(3)[[2, 0]])  # per image
    torch.testing.assert_close(norm(x)[1], (plain[1] * norm.gamma[0].view(4, 1, 1) + norm.beta[0].view(4, 1, 1)))
    with pytest.raises(ValueError, match="mix"):
        norm.set_mix(torch.ones(4))


def test_network_has_per_style_parameters_in_every_norm_only():
    net = CIN.cin_style_net(0.25, 4)
    plain = JN.StyleNet(0.25, "instance")
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) for m in net.modules())
    n_norm = sum(1 for m in plain.modules() if isinstance(m, torch.nn.InstanceNorm2d))
    assert sum(1 for m in net.modules() if isinstance(m, CIN.ConditionalInstanceNorm2d)) == n_norm
    extra = sum(p.numel() for p in net.parameters()) - sum(p.numel() for p in plain.parameters())
    norm_params = sum(p.numel() for m in plain.modules() if isinstance(m, torch.nn.InstanceNorm2d)
                      for p in m.parameters())
    assert extra == 3 * norm_params  # γ and β for 4 styles instead of 1


@pytest.mark.slow
def test_trained_on_four_styles_stylises_each_from_one_network_file(tmp_path):
    styles = _styles()
    content = _photo("astronaut", 40)
    outs, keys = [], set()
    for k, s in enumerate(styles):
        m = CIN.CINStyle.from_config("tiny", {"iterations": 4})
        inp = _input(content, s, style_set=styles)
        m.prepare(inp, seed=0, device=CPU)
        outs.append(m.run(inp, seed=0, device=CPU))
        info = m.pop_info()
        keys.add(info["train_key"])
        assert info["styles_trained"] == 4 and info["style_mix"] == [1.0 if j == k else 0.0 for j in range(4)]
        assert info["train_cached"] is (k > 0), "trained once, then loaded for the other styles"
    assert len(keys) == 1
    from texbench.trained import trained_dir

    assert len(list(trained_dir().glob("*.pt"))) == 1, "one network file for the four styles"
    for a in range(4):
        assert outs[a].shape == (3, 40, 40) and 0 <= outs[a].min() and outs[a].max() <= 1
        for b in range(a + 1, 4):
            assert not torch.allclose(outs[a], outs[b], atol=1e-3), (a, b)
    # interpolation: the mixed γ, β of styles 0 and 2 gives a third output
    m = CIN.CINStyle.from_config("tiny", {"iterations": 4, "style_weights": (1.0, 1.0)})
    mixed = m.run(_input(content, styles[0], style_set=styles, styles=(styles[0], styles[2])), seed=0, device=CPU)
    assert m.pop_info()["style_mix"] == [0.5, 0.0, 0.5, 0.0]
    assert not torch.allclose(mixed, outs[0], atol=1e-3) and not torch.allclose(mixed, outs[2], atol=1e-3)
    # a style outside the trained set is refused, naming the argument
    with pytest.raises(ValueError, match="task_input.style"):
        CIN.CINStyle.from_config("tiny", {"iterations": 4}).run(_input(content, _photo("coffee", 64), style_set=styles), seed=0, device=CPU)


@pytest.mark.slow
def test_held_out_style_loss_drops_during_training():
    """Style loss of held-out content photos (never trained on), for each of the 4 styles: the trained
    network against its own initialisation."""
    styles = _styles()
    m = CIN.CINStyle.from_config("tiny", {"iterations": 60, "lr": 1e-2, "train_size": 48, "batch_size": 2})
    net = m.trained_net_for(styles, CPU)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(m.params.train_seed)
        init = CIN.cin_style_net(m.params.width, len(styles))
    vgg = loss_network(m._loss_layers(), CPU)
    held_out = torch.stack([_photo(n, 48) for n in ("astronaut", "coffee", "chelsea")])

    def loss(network, k):
        CIN.set_style(network, torch.nn.functional.one_hot(torch.tensor(k), len(styles)).float())
        with torch.no_grad():
            return JN.style_loss(vgg(network(held_out)), m.style_targets(styles[k], vgg)).item()

    before = [loss(init, k) for k in range(4)]
    after = [loss(net, k) for k in range(4)]
    # measured here: before 43.6, 85.3, 57.1, 89.3; after 9.5, 51.7, 12.9, 69.1
    assert all(a < 0.9 * b for a, b in zip(after, before)), (before, after)
    assert sum(after) < 0.6 * sum(before), (before, after)


def test_benchmark_jobs_carry_the_style_set_in_input_and_key(tmp_path):
    from texbench.suite import expand, parse_suite

    def suite(method):
        return parse_suite({"name": "t", "task": [{"name": "style", "image_size": 32, "limit": 2,
                                                   "datasets": {"content": "builtin-content", "style": "builtin-styles"},
                                                   "methods": [method]}]})  # fmt: skip

    jobs = expand(suite({"name": "cin-style", "preset": "tiny"}))
    assert len(jobs) == 4 and all(len(j.example.input.style_set) == 2 for j in jobs)
    other = expand(suite({"name": "reinhard"}))
    assert all(j.example.input.style_set == () for j in other)
    # a different style set is a different training: the keys change (limit 3 adds a style)
    more = parse_suite({"name": "t", "task": [{"name": "style", "image_size": 32,
                                               "datasets": {"content": {"name": "builtin-content", "limit": 2},
                                                            "style": {"name": "builtin-styles", "limit": 3}},
                                               "methods": [{"name": "cin-style", "preset": "tiny"}]}]})  # fmt: skip
    keys3 = {(j.item, j.key) for j in expand(more)}
    keys2 = {(j.item, j.key) for j in jobs}
    shared_items = {i for i, _ in keys2}
    assert not {k for i, k in keys3 if i in shared_items} & {k for _, k in keys2}


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="style_weights"):
        CIN.CINStyle.from_config("tiny", {"style_weights": (-1.0,)})
    with pytest.raises(ValueError, match="n_styles"):
        CIN.cin_style_net(0.25, 0)
    net = CIN.cin_style_net(0.25, 2)
    with pytest.raises(ValueError, match="style"):
        net(torch.rand(1, 3, 16, 16))
