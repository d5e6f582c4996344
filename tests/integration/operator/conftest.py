"""Fixtures: a fake API server with the ESENASJob CRD applied by the real kubectl, a stand-in
aggregator endpoint, and the real operator process pointed at both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakekube.harness import FakeKube
from tests.fakekube.plugin import fakekube, fakekube_factory  # noqa: F401 - fixtures used below
from tests.integration.operator.opharness import (
    CRD_FILE,
    OperatorProcess,
    StandInAggregator,
    env_without_proxy,
)


@pytest.fixture
def cluster(fakekube: FakeKube) -> FakeKube:  # noqa: F811 - the fixture above
    fakekube.kubectl("apply", "-f", str(CRD_FILE))
    fakekube.wait_for(lambda: "esenasjobs" in fakekube.kubectl("api-resources", "--api-group=esenas.dev").stdout)
    return fakekube


@pytest.fixture
def standin() -> Iterator[StandInAggregator]:
    server = StandInAggregator()
    yield server
    server.close()


@pytest.fixture
def operator(cluster: FakeKube, standin: StandInAggregator, tmp_path: Path) -> Iterator[OperatorProcess]:
    env = {**env_without_proxy(), **{k: v for k, v in cluster.env().items() if k in ("KUBECONFIG", "KUBECACHEDIR")}}
    op = OperatorProcess(tmp_path, env, standin.url_template, interval=1.0)
    op.start()
    yield op
    alive = op.alive()
    op.stop()
    assert alive, f"the operator process exited: {op.log()[-3000:]}"
