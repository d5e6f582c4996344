"""Fixtures of the runtime tests that talk to one long-running aggregator by hand: ``agg``, a real
aggregator process per test module (4 pairs per iteration that never stops on reward), and
``stub``, a client channel to it per test."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from esenas_api.v1 import aggregator_pb2_grpc as pb_grpc

from tests.integration.runtime.procs import AggregatorProc, start_aggregator, stop_all, write_job


@pytest.fixture(scope="module")
def agg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AggregatorProc]:
    tmp = tmp_path_factory.mktemp("agg")
    job = write_job(
        tmp,
        # pairs only (no exact evals), so every leased item takes two rewards and a lease of 8 holds 4
        **{"es.perturbations": 4, "es.topDirections": 0, "es.exactEvals": 0, "workers.batchSize": 8,
           "stopping.targetReward": 1e9},
    )
    a = start_aggregator(tmp, job, exit_when_done=False)
    yield a
    stop_all(a)


@pytest.fixture
def stub(agg: AggregatorProc) -> Iterator[pb_grpc.AggregatorStub]:
    with grpc.insecure_channel(agg.address) as ch:
        yield pb_grpc.AggregatorStub(ch)
