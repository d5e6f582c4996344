"""pytest fixtures: `fakekube` starts a fresh fake API server process per test;
`fakekube_factory` starts servers with extra command-line options."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakekube.harness import FakeKube

Factory = Callable[..., FakeKube]


@pytest.fixture
def fakekube_factory(tmp_path: Path) -> Iterator[Factory]:
    """Start one or more fake API servers (args as for `python -m tests.fakekube`)."""
    started: list[FakeKube] = []

    def start(*args: str) -> FakeKube:
        workdir = tmp_path / f"fakekube-{len(started)}"
        workdir.mkdir()
        server = FakeKube(workdir, *args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def fakekube(fakekube_factory: Factory) -> FakeKube:
    """A fake Kubernetes API server on 127.0.0.1 with .url, .kubeconfig, .client, .kubectl()."""
    return fakekube_factory()
