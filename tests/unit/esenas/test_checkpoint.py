"""Checkpoints: exact round trip, atomic replace, keep-previous, fall-back on corruption."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from esenas.checkpoint import CheckpointError, CheckpointStore, decode, encode


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
