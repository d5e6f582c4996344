"""The ``env_module`` fixture: a user's environment module, written for one test and importable
as ``NAME:Class`` (what ``spec.environment.id`` names), then forgotten."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

#: An environment whose action space no vector policy can emit (``SPACE`` is filled in).
UNDRIVABLE = (
    "import gymnasium\nfrom gymnasium import spaces\n\n"
    "class Env(gymnasium.Env):\n"
    "    action_space = SPACE\n"
    "    observation_space = spaces.Box(-1, 1, (2,))\n"
)


@pytest.fixture
def env_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], str]]:
    """``write(name, space)``: a module ``name`` whose class ``Env`` has the action space
    ``space`` (Python source, e.g. ``"spaces.Text(8)"``); returns the id ``name:Env``."""
    names: list[str] = []

    def write(name: str, space: str) -> str:
        (tmp_path / f"{name}.py").write_text(UNDRIVABLE.replace("SPACE", space))
        monkeypatch.syspath_prepend(str(tmp_path))
        names.append(name)
        return f"{name}:Env"

    yield write
    for name in names:
        sys.modules.pop(name, None)
