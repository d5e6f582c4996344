"""Shared pytest configuration. Test folders are not packages (import-mode=importlib);
shared fixtures live in tests/<area>/ modules and are registered here."""

from __future__ import annotations

pytest_plugins: list[str] = ["tests.fakekube.plugin", "tests.envs.plugin"]
