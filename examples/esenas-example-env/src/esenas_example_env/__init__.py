"""An example environment package: importing it registers ``PointMass-v0`` with Gymnasium.

Either form of ``environment.id`` trains it:

- ``esenas_example_env:PointMass-v0``: ES-ENAS imports the module (which runs the ``register``
  below), then ``gymnasium.make("esenas_example_env:PointMass-v0", **kwargs)``;
- ``esenas_example_env:PointMassEnv``: the class itself, built as ``PointMassEnv(**kwargs)``.
"""

from __future__ import annotations

from gymnasium.envs.registration import register

from esenas_example_env.point_mass import PointMassEnv

__all__ = ["PointMassEnv"]

register(id="PointMass-v0", entry_point="esenas_example_env.point_mass:PointMassEnv", max_episode_steps=200)
