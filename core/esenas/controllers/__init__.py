"""NAS controllers behind one ask/tell interface; :func:`make_controller` picks one from the spec."""

from __future__ import annotations

from esenas.controllers.base import Controller, FixedController, RandomSearch
from esenas.controllers.evolution import RegularizedEvolution
from esenas.controllers.policy_gradient import PolicyGradient
from esenas.spec import ControllerSpec
from esenas.topology import SearchSpace, Topology

__all__ = [
    "Controller",
    "FixedController",
    "PolicyGradient",
    "RandomSearch",
    "RegularizedEvolution",
    "make_controller",
]


def make_controller(
    spec: ControllerSpec, space: SearchSpace, seed: int, fixed: Topology | None = None
) -> Controller:
    """The controller named by ``spec.type``; ``none`` needs the ``fixed`` topology."""
    if spec.type == "random":
        return RandomSearch(space, spec, seed)
    if spec.type == "evolution":
        return RegularizedEvolution(space, spec, seed)
    if spec.type == "policy_gradient":
        return PolicyGradient(space, spec, seed)
    if spec.type == "none":
        if fixed is None:
            raise ValueError("controller 'none' needs a fixed topology")
        return FixedController(space, spec, seed, fixed)
    raise ValueError(f"controller type: unknown {spec.type!r}")
