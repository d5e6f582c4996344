"""Wire records stay within budget and decode in one call; generated code matches the protos."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from esenas.results import ITEM_DTYPE, KIND_EXACT, KIND_PAIR
from esenas_api import wire

REPO = Path(__file__).resolve().parents[3]


def test_result_record_is_at_most_32_bytes_and_round_trips() -> None:
    assert wire.RESULT_DTYPE.itemsize == 28
    buf = wire.encode_results([3, 1], [1.5, -2.0], [np.nan, 4.0], [1000, 7], [2, 0])
    r = wire.decode_results(buf)
    assert list(r["index"]) == [3, 1] and r["reward_pos"][1] == -2.0 and np.isnan(r["reward_neg"][0])
    with pytest.raises(wire.WireError, match="multiple of 28"):
        wire.decode_results(buf[:-1])


def test_work_items_are_the_librarys_plan_records_17_bytes_each() -> None:
    assert wire.WORK_DTYPE is ITEM_DTYPE and wire.WORK_DTYPE.itemsize == 17
    assert (wire.KIND_PAIR, wire.KIND_EXACT) == (KIND_PAIR, KIND_EXACT) == (0, 1)
    items = np.zeros(2, ITEM_DTYPE)
    items["index"], items["seed"], items["topology"], items["kind"] = [0, 1], [2**63, 5], [7, 0], [KIND_PAIR, KIND_EXACT]
    buf = wire.encode_items(items)
    assert buf[:17] == b"\0" * 4 + (2**63).to_bytes(8, "little") + (7).to_bytes(4, "little") + b"\0"
    assert np.array_equal(wire.decode_items(buf), items)


def test_obs_stats_checked() -> None:
    buf = wire.encode_obs_stats(2, [1.0, 2.0], [3.0, 4.0])
    c, s, q = wire.decode_obs_stats(buf, 2)
    assert c == 2 and list(s) == [1.0, 2.0] and list(q) == [3.0, 4.0]
    with pytest.raises(wire.WireError, match="expected 56 bytes"):
        wire.decode_obs_stats(buf, 3)
    with pytest.raises(wire.WireError, match="non-finite"):
        wire.decode_obs_stats(wire.encode_obs_stats(1, [np.nan, 0], [0, 0]), 2)


def test_token_compare() -> None:
    assert wire.token_matches("abc", "Bearer abc")
    assert not wire.token_matches("abc", "Bearer abd")
    assert not wire.token_matches("abc", "abc")
    assert not wire.token_matches("abc", None)


def test_generated_protobuf_code_has_not_drifted() -> None:
    r = subprocess.run([str(REPO / "scripts/gen-protos.sh"), "--check"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_server_and_channel_of_the_protocol_turns_http2_bdp_probing_off() -> None:
    """The aggregator's (and a relay's) server, the worker's channel and a relay's upstream
    channel all carry wire.HTTP2_OPTIONS: BDP probing cost the aggregator ~20% of its CPU per
    result at 1,000 workers (bench/results/scale.md)."""
    from esenas_aggregator.relay_cli import UPSTREAM_OPTIONS
    from esenas_aggregator.service import SERVER_OPTIONS
    from esenas_worker.worker import CHANNEL_OPTIONS

    assert wire.HTTP2_OPTIONS == (("grpc.http2.bdp_probe", 0),)
    for options in (SERVER_OPTIONS, CHANNEL_OPTIONS, UPSTREAM_OPTIONS):
        assert set(wire.HTTP2_OPTIONS) <= set(options)
