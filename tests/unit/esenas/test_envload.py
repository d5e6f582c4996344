"""Building a user's environment in each id form, and the one line when it cannot be built."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from esenas.entrypoint import exit_with_reason
from esenas.envload import (
    DEFAULT_EPISODE_STEPS,
    EnvironmentUnavailable,
    episode_limit,
    make_env,
    parse_env_id,
    tidy_gymnasium_warnings,
)
from esenas.rollout import env_dims
from esenas.spec import EnvironmentSpec, SpecError, load_job

MODULE = '''
import gymnasium
import numpy as np
from gymnasium.envs.registration import register


class Line(gymnasium.Env):
    def __init__(self, size=3, fail=False, gain=1.0, extra=0):
        if fail:
            raise RuntimeError("the simulator\\nis not licensed")
        self.gain, self.extra = gain, extra
        self.observation_space = gymnasium.spaces.Box(-1.0, 1.0, (size,))
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (1,))

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(self.observation_space.shape, np.float32), {}

    def step(self, action):
        obs = np.zeros(self.observation_space.shape[0] + self.extra, np.float32)
        return obs, float(action[0]) / self.gain, False, False, {}


class Spaceless(gymnasium.Env):
    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (3,))
    action_space = "Box(-1, 1)"


class NotAnEnv:
    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (3,))
    action_space = gymnasium.spaces.Box(-1.0, 1.0, (1,))


def make_line(path="/dev/null"):
    raise AssertionError("a function named as the environment must never be called")


register(id="Line-v0", entry_point=Line)
register(id="acme/Line-v1", entry_point=Line, kwargs={"size": 5})
register(id="ShortLine-v0", entry_point=Line, max_episode_steps=4)
'''


@pytest.fixture
def user_module(tmp_path: Path) -> Iterator[str]:
    """An importable module that registers ids when imported, as a user's package does."""
    (tmp_path / "esenas_test_user_envs.py").write_text(MODULE)
    sys.path.insert(0, str(tmp_path))
    try:
        yield "esenas_test_user_envs"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("esenas_test_user_envs", None)
        for env_id in ("Line-v0", "acme/Line-v1", "ShortLine-v0"):  # the next import registers them again
            gymnasium.registry.pop(env_id, None)


def _unavailable(env_id: str, **kwargs: object) -> str:
    with pytest.raises(EnvironmentUnavailable) as info:
        make_env(EnvironmentSpec(env_id, kwargs=kwargs))
    line = str(info.value)
    assert "\n" not in line and line == str(info.value.error)
    assert info.value.__cause__ is not None  # the original stays chained for the logs
    return line


def test_module_class_takes_kwargs_and_the_episode_limit(user_module: str) -> None:
    env = make_env(EnvironmentSpec(f"{user_module}:Line", kwargs={"size": 7}, max_episode_steps=3))
    assert env_dims(env) == (7, 1)
    env.reset(seed=0)
    assert [env.step(np.zeros(1))[3] for _ in range(3)] == [False, False, True]


def test_an_unset_episode_limit_is_the_one_the_task_is_registered_with(user_module: str) -> None:
    def limit(env_id: str, steps: int | None = None) -> int:
        return episode_limit(EnvironmentSpec(env_id, max_episode_steps=steps))

    assert [limit(i) for i in ("Reacher-v5", "Pusher-v5", "HalfCheetah-v5", "InvertedPendulum-v5")] == [50, 100, 1000, 1000]
    assert limit("Reacher-v5", 7) == 7  # set, it wins
    assert limit(f"{user_module}:ShortLine-v0") == 4  # registered by the user's module, with a limit
    assert limit(f"{user_module}:Line-v0") == DEFAULT_EPISODE_STEPS  # registered without one
    assert limit(f"{user_module}:Line") == DEFAULT_EPISODE_STEPS  # a class
    assert limit("NoSuchTask-v3") == DEFAULT_EPISODE_STEPS  # make_env refuses it, saying why
    gymnasium.register(id="NoSuchTask-v3", entry_point=f"{user_module}:Line", max_episode_steps=9)
    try:
        assert limit("NoSuchTask-v3") == 9  # registered since: the miss was not kept
    finally:
        gymnasium.registry.pop("NoSuchTask-v3", None)
    for env_id, steps in ((f"{user_module}:ShortLine-v0", 4), (f"{user_module}:Line", DEFAULT_EPISODE_STEPS)):
        env = make_env(EnvironmentSpec(env_id))
        env.reset(seed=0)
        ends = [env.step(np.zeros(1))[3] for _ in range(steps)]
        assert ends == [False] * (steps - 1) + [True]  # the TimeLimit is the same limit
    reacher = make_env(EnvironmentSpec("Reacher-v5"))
    reacher.reset(seed=0)
    ends = [reacher.step(np.zeros(2))[3] for _ in range(50)]
    assert ends == [False] * 49 + [True]


@pytest.mark.parametrize(("name", "kwargs", "obs"), [("Line-v0", {}, 3), ("Line-v0", {"size": 2}, 2), ("acme/Line-v1", {}, 5)])
def test_module_registered_id_imports_the_module_first(user_module: str, name: str, kwargs: dict[str, int], obs: int) -> None:
    assert env_dims(EnvironmentSpec(f"{user_module}:{name}", kwargs=kwargs)) == (obs, 1)


@pytest.mark.parametrize("env_id", ["my_pkg.envs:Arm", "my_pkg:Arm-v0", "my_pkg:acme/Arm-v12", "Arm-v0", "acme/Arm-v0"])
def test_the_spec_accepts_every_form(env_id: str) -> None:
    job = load_job({"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob", "metadata": {"name": "j"},
                    "spec": {"environment": {"id": env_id}}})
    assert job.spec.environment.id == env_id


@pytest.mark.parametrize("env_id", ["my_pkg:Arm-v", "my_pkg:", ":Arm", "my pkg:Arm", "my_pkg:Arm:v0"])
def test_the_spec_refuses_malformed_ids(env_id: str) -> None:
    with pytest.raises(SpecError, match=r"spec\.environment\.id"):
        load_job({"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob", "metadata": {"name": "j"},
                  "spec": {"environment": {"id": env_id}}})


def test_parse_env_id() -> None:
    assert parse_env_id("a.b:C").describe() == "'a.b:C' (module a.b, class C)"
    assert parse_env_id("a.b:C-v0").describe() == "'a.b:C-v0' (module a.b, id C-v0)"
    assert parse_env_id("Hopper-v5").describe() == "'Hopper-v5'"


def test_each_failure_is_one_line_naming_module_class_or_id_and_the_error(user_module: str) -> None:
    field = "spec.environment.id: environment "
    assert _unavailable("esenas_no_such_pkg.envs:Arm") == (
        f"{field}'esenas_no_such_pkg.envs:Arm' (module esenas_no_such_pkg.envs, class Arm): cannot import module "
        "esenas_no_such_pkg.envs: ModuleNotFoundError: No module named 'esenas_no_such_pkg'")
    assert _unavailable("esenas_no_such_pkg:Arm-v0") == (
        f"{field}'esenas_no_such_pkg:Arm-v0' (module esenas_no_such_pkg, id Arm-v0): cannot import module "
        "esenas_no_such_pkg: ModuleNotFoundError: No module named 'esenas_no_such_pkg'")
    assert _unavailable(f"{user_module}:Lime") == (
        f"{field}'{user_module}:Lime' (module {user_module}, class Lime): module {user_module} has no class Lime: "
        f"AttributeError: module '{user_module}' has no attribute 'Lime'")
    assert _unavailable(f"{user_module}:Line", fail=True) == (
        f"{field}'{user_module}:Line' (module {user_module}, class Line): Line(**kwargs) failed: "
        "RuntimeError: the simulator is not licensed")
    assert _unavailable(f"{user_module}:Lime-v0").startswith(
        f"{field}'{user_module}:Lime-v0' (module {user_module}, id Lime-v0): not registered by module {user_module}: ")
    # A kwarg the constructor does not take is named as the field at fault.
    assert _unavailable(f"{user_module}:Line-v0", colour="red").startswith(
        f"spec.environment.kwargs.colour: environment '{user_module}:Line-v0' (module {user_module}, id Line-v0): "
        "cannot build it: TypeError: Line.__init__() got an unexpected keyword argument 'colour'")
    assert _unavailable(f"{user_module}:Line", colour="red").startswith(
        f"spec.environment.kwargs.colour: environment '{user_module}:Line' (module {user_module}, class Line): "
        "Line(**kwargs) failed: TypeError: ")


def test_an_environment_without_gymnasium_spaces_is_one_line(user_module: str) -> None:
    with pytest.raises(EnvironmentUnavailable) as info:
        make_env(EnvironmentSpec(f"{user_module}:Spaceless"))
    assert str(info.value) == (
        f"spec.environment.id: environment '{user_module}:Spaceless' (module {user_module}, class Spaceless): its "
        "action_space must be a gymnasium.spaces.Space, got a str")


@pytest.mark.parametrize(("name", "got"), [("NotAnEnv", "the class NotAnEnv"), ("make_line", "a function"), ("np", "a module")])
def test_only_a_gymnasium_env_class_is_built(user_module: str, name: str, got: str) -> None:
    """``module:Class`` calls only a ``gymnasium.Env`` subclass: ``os:system`` with kwargs would
    otherwise run a command wherever the job is checked (the aggregator, ``esenas run``)."""
    with pytest.raises(EnvironmentUnavailable) as info:
        make_env(EnvironmentSpec(f"{user_module}:{name}", kwargs={"path": "/tmp/x"}))
    assert str(info.value) == (
        f"spec.environment.id: environment '{user_module}:{name}' (module {user_module}, class {name}): "
        f"{user_module}.{name} must be a gymnasium.Env subclass, got {got}")


def test_an_environment_that_builds_but_fails_when_stepped_is_reported_before_anything_runs(user_module: str) -> None:
    """A kwarg of the wrong type often passes the constructor and fails in the first step (Gymnasium's
    Pendulum-v1 with ``g: "heavy"``): env_dims, where the aggregator and ``esenas run`` learn the
    task's sizes, steps once and says so in one line naming the kwargs."""
    assert env_dims(EnvironmentSpec(f"{user_module}:Line-v0", kwargs={"gain": 2.0})) == (3, 1)
    with pytest.raises(EnvironmentUnavailable) as info:
        env_dims(EnvironmentSpec(f"{user_module}:Line-v0", kwargs={"gain": "heavy"}))
    assert str(info.value) == (
        f"spec.environment.id: environment '{user_module}:Line-v0' (module {user_module}, id Line-v0): its first "
        "reset and step failed (kwargs {'gain': 'heavy'}): TypeError: unsupported operand type(s) for /: 'float' and 'str'")
    with pytest.raises(EnvironmentUnavailable) as info:
        env_dims(EnvironmentSpec(f"{user_module}:Line", kwargs={"extra": 2}))
    assert str(info.value) == (
        f"spec.environment.id: environment '{user_module}:Line' (module {user_module}, class Line): step() returned "
        "5 observation numbers, its observation_space has 3")
    with pytest.raises(EnvironmentUnavailable, match=r"'Pendulum-v1': its first reset and step failed \(kwargs \{'g': 'heavy'\}\): TypeError"):
        env_dims(EnvironmentSpec("Pendulum-v1", kwargs={"g": "heavy"}))


def test_a_module_that_raises_on_import_is_reported_too(tmp_path: Path) -> None:
    (tmp_path / "esenas_test_broken_envs.py").write_text("raise ImportError('libsim.so: cannot open shared object file')\n")
    sys.path.insert(0, str(tmp_path))
    try:
        assert _unavailable("esenas_test_broken_envs:Arm-v0").endswith(
            "cannot import module esenas_test_broken_envs: ImportError: libsim.so: cannot open shared object file")
    finally:
        sys.path.remove(str(tmp_path))


def test_exit_with_reason_writes_the_termination_log_and_ends_stderr_with_the_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "termination-log"
    log.write_text("")  # the kubelet mounts it; the process only writes it
    assert exit_with_reason("spec.environment.id: environment 'x:Y'\n  broken", log) == 2
    assert log.read_text() == "spec.environment.id: environment 'x:Y' broken\n"
    assert capsys.readouterr().err.splitlines()[-1] == "spec.environment.id: environment 'x:Y' broken"
    # Outside a pod there is no such file, and none is created.
    assert exit_with_reason("why", tmp_path / "none") == 2
    assert not (tmp_path / "none").exists()


def test_gymnasium_warnings_are_one_plain_line_each_and_others_are_shown_as_before(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shown: list[str] = []
    monkeypatch.setattr(warnings, "showwarning", lambda message, *args, **kwargs: shown.append(str(message)))
    tidy_gymnasium_warnings()
    tidy_gymnasium_warnings()  # a second call does not wrap the first
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        for _ in range(2):
            gymnasium.make("Reacher-v4").close()  # an outdated id: Gymnasium warns
        warnings.warn_explicit("\x1b[33mWARN: the same\n  text\x1b[0m", UserWarning, "/x/gymnasium/core.py", 7)
        warnings.warn_explicit("WARN: the same text", UserWarning, "/x/gymnasium/utils.py", 9)
        warnings.warn("not Gymnasium's", UserWarning, stacklevel=1)
    assert capsys.readouterr().err.splitlines() == [
        "warning: gymnasium: The environment Reacher-v4 is out of date. You should consider upgrading to version `v5`.",
        "warning: gymnasium: the same text",
    ]
    assert shown == ["not Gymnasium's"]

