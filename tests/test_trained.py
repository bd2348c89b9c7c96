"""The cache of self-trained weights: keyed by everything training depends on, atomic, shared."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest
import torch

from texbench.trained import load_or_train, trained_dir, training_key

FIELDS = {"method": "m", "version": "1", "params": {"a": 1}, "inputs": ["abc"], "seed": 0}


def _train_counter(counter: list[int]):
    def train():
        counter.append(1)
        return {"w": torch.arange(4.0)}, {"loss": 0.5}

    return train


def test_key_depends_on_every_field_and_not_on_order():
    assert training_key(FIELDS) == training_key(dict(reversed(list(FIELDS.items()))))
    for k, v in [("seed", 1), ("version", "2"), ("params", {"a": 2}), ("inputs", ["abd"])]:
        assert training_key({**FIELDS, k: v}) != training_key(FIELDS)


def test_trains_once_then_loads(tmp_path):
    calls: list[int] = []
    first = load_or_train(FIELDS, _train_counter(calls), root=tmp_path)
    second = load_or_train(FIELDS, _train_counter(calls), root=tmp_path)
    assert calls == [1]
    assert not first.cached and second.cached
    assert torch.equal(second.state["w"], torch.arange(4.0))
    assert second.record["info"] == {"loss": 0.5} and second.record["train_seconds"] >= 0
    assert json.loads((tmp_path / f"{first.key}.json").read_text())["fields"]["seed"] == 0
    load_or_train({**FIELDS, "seed": 1}, _train_counter(calls), root=tmp_path)
    assert calls == [1, 1]


def test_damaged_entry_is_retrained(tmp_path):
    calls: list[int] = []
    res = load_or_train(FIELDS, _train_counter(calls), root=tmp_path)
    (tmp_path / f"{res.key}.pt").write_bytes(b"not a checkpoint")
    again = load_or_train(FIELDS, _train_counter(calls), root=tmp_path)
    assert calls == [1, 1] and not again.cached


def test_failed_training_leaves_nothing(tmp_path):
    def boom():
        raise RuntimeError("diverged")

    with pytest.raises(RuntimeError, match="diverged"):
        load_or_train(FIELDS, boom, root=tmp_path)
    assert not list(tmp_path.glob("*.pt")) and not list(tmp_path.glob("*.tmp"))


def test_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXBENCH_TRAINED", str(tmp_path / "t"))
    assert trained_dir() == tmp_path / "t"


def _worker(root: str, q) -> None:
    import time

    def train():
        time.sleep(0.5)
        return {"w": torch.ones(2)}, {}

    q.put(load_or_train(FIELDS, train, root=root).cached)


def test_concurrent_workers_train_once(tmp_path):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), q)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert sorted([q.get(timeout=5), q.get(timeout=5)]) == [False, True]


def test_cli_list_and_clear(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from texbench.cli import main

    monkeypatch.setenv("TEXBENCH_TRAINED", str(tmp_path))
    load_or_train({**FIELDS, "method": "texture-networks"}, _train_counter([]))
    load_or_train({**FIELDS, "method": "johnson"}, _train_counter([]))
    out = CliRunner().invoke(main, ["trained", "list"])
    assert out.exit_code == 0 and "texture-networks" in out.output and "johnson" in out.output
    out = CliRunner().invoke(main, ["trained", "clear", "--method", "johnson", "--yes"])
    assert out.exit_code == 0 and "deleted 1 " in out.output
    assert len(list(tmp_path.glob("*.pt"))) == 1


def test_cli_clear_all_removes_leftovers_of_interrupted_writes(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from texbench.cli import main

    monkeypatch.setenv("TEXBENCH_TRAINED", str(tmp_path))
    res = load_or_train(FIELDS, _train_counter([]))
    (tmp_path / f"{res.key}.json").unlink()  # killed between the two renames
    (tmp_path / "abc.pt.x1y2.tmp").write_bytes(b"half")  # killed inside torch.save
    out = CliRunner().invoke(main, ["trained", "clear", "--yes"])
    assert out.exit_code == 0, out.output
    assert not list(tmp_path.iterdir())


def test_cached_files_are_readable_by_others(tmp_path):
    import os
    import stat

    res = load_or_train(FIELDS, _train_counter([]), root=tmp_path)
    mask = os.umask(0)
    os.umask(mask)
    mode = stat.S_IMODE((tmp_path / f"{res.key}.pt").stat().st_mode)
    assert mode == 0o644 & ~mask
