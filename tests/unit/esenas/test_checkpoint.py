"""Checkpoints: exact round trip, atomic replace, keep-previous, fall-back on corruption, and a
size that stays bounded over any number of iterations."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from esenas.algorithm import ESENAS, Results
from esenas.checkpoint import CheckpointError, CheckpointStore, decode, encode
from esenas.spec import parse_spec
from esenas.state import MAX_HISTORY


def test_round_trip_keeps_arrays_tuples_and_nan() -> None:
    state = {"a": np.arange(5, dtype=np.uint64), "t": (1, "x"), "n": [np.float32(1.5), None, float("nan")], "d": {"b": True}}
    back = decode(encode(state))
    assert back["a"].dtype == np.uint64 and list(back["a"]) == [0, 1, 2, 3, 4]
    assert back["t"] == (1, "x") and back["n"][0] == 1.5 and back["n"][1] is None and np.isnan(back["n"][2])
    assert back["d"] == {"b": True}


def test_no_pickle_objects_accepted() -> None:
    with pytest.raises(TypeError, match="cannot checkpoint"):
        encode({"x": object()})


def test_keeps_two_and_falls_back_when_the_latest_is_corrupt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = CheckpointStore(tmp_path)
    for it in (1, 2, 3):
        store.save(it, encode({"iteration": it}))
    assert [p.name for p in store.files()] == ["ckpt-0000000003.esck", "ckpt-0000000002.esck"]
    latest = store.files()[0]
    data = bytearray(latest.read_bytes())
    data[-10] ^= 0xFF
    latest.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR):
        loaded = store.load_latest()
    assert loaded is not None and loaded[1] == {"iteration": 2}
    assert "ckpt-0000000003.esck is unusable" in caplog.text and "checksum" in caplog.text


def test_all_corrupt_is_a_clear_error_and_empty_folder_is_none(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    assert store.load_latest() is None
    (tmp_path / "ckpt-0000000001.esck").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"no readable checkpoint.*bad magic"):
        store.load_latest()
    assert not list(tmp_path.glob(".*tmp*"))


def test_checkpoint_size_stays_bounded_over_many_iterations() -> None:
    """Past MAX_HISTORY iterations the history is thinned, so a checkpoint is never larger than the
    one taken when the history first filled (the controller, front and normaliser are fixed-size)."""
    spec = parse_spec({
        "environment": {"id": "Toy-v0"}, "seed": 1,
        "policy": {"template": "linear", "topology": "partition", "partitions": 3},
        "controller": {"type": "evolution", "populationSize": 10},
        "es": {"perturbations": 2, "exactEvals": 1}, "stopping": {"maxIterations": 10 * MAX_HISTORY},
    })
    algo = ESENAS(spec, 3, 2)
    rng = np.random.default_rng(0)
    sizes: dict[int, int] = {}
    for i in range(1, MAX_HISTORY + 501):
        plan = algo.ask()
        n, pair = plan.items.size, plan.items["kind"] == 0
        neg = np.where(pair, rng.normal(size=n), np.nan)
        algo.tell(Results(plan.items["index"].copy(), rng.normal(size=n), neg, np.full(n, 10, np.uint32)))
        assert len(algo.history) <= MAX_HISTORY
        if i in (MAX_HISTORY // 2, MAX_HISTORY) or (i > MAX_HISTORY and i % 100 == 0):
            sizes[i] = len(encode(algo.state_dict()))
    full = sizes[MAX_HISTORY]
    assert full > 1.5 * sizes[MAX_HISTORY // 2]  # the history is most of it: the check below has teeth
    assert all(size <= full * 1.01 for i, size in sizes.items() if i > MAX_HISTORY), sizes
    assert algo.history[0]["iteration"] == 0 and algo.history[-1]["iteration"] == MAX_HISTORY + 499
