"""Spec parsing: defaults, and one clear message per bad field."""

from __future__ import annotations

import glob
from typing import Any

import pytest
from esenas.es_defaults import chosen_by_task
from esenas.spec import SpecError, check_dimensions, load_job, parse_spec

BASE: dict[str, Any] = {"environment": {"id": "HalfCheetah-v5"}}


def _with(path: str, value: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"environment": {"id": "HalfCheetah-v5"}}
    node = spec
    *parents, leaf = path.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
    return spec


def test_defaults() -> None:
    s = parse_spec(BASE)
    assert s.policy.topology == "dense"
    assert s.controller.type == "none"
    assert s.es.perturbations == 32
    assert s.workers.replicas == 4
    assert s.environment.max_episode_steps is None  # the task's registered limit (esenas.envload.episode_limit)


def test_partition_defaults_to_policy_gradient_controller() -> None:
    s = parse_spec({**BASE, "policy": {"template": "mlp", "topology": "partition", "partitions": 17}})
    assert s.controller.type == "policy_gradient"
    assert s.policy.hidden_layers == (41,)


def test_es_defaults_follow_the_template() -> None:
    """A linear policy keeps ARS V2-t's ES settings; an mlp gets the ones its runs were measured
    with (bench/results/learning.md), field by field, where the spec leaves them out. Both choose
    their best policy on 8 exact evals per iteration (learning-history.md, 2026-12-04)."""
    linear = parse_spec(BASE).es
    assert (linear.sigma, linear.step_size, linear.perturbations, linear.fitness_shaping, linear.optimizer, linear.exact_evals) == (
        0.03, 0.02, 32, "zscore", "sgd", 8
    )
    mlp = parse_spec({**BASE, "policy": {"template": "mlp", "topology": "partition", "partitions": 17}}).es
    assert (mlp.sigma, mlp.step_size, mlp.perturbations, mlp.fitness_shaping, mlp.optimizer, mlp.exact_evals) == (
        0.1, 0.05, 64, "centered_ranks", "adam", 8
    )
    given = parse_spec({**BASE, "policy": {"template": "mlp"}, "es": {"sigma": 0.02, "perturbationsPerWorker": 3}, "workers": {"replicas": 5}}).es
    assert (given.sigma, given.step_size, given.perturbations) == (0.02, 0.05, 15)


@pytest.mark.parametrize(
    ("template", "env_id", "clip"),
    [("linear", "HalfCheetah-v5", False), ("linear", "Ant-v5", False), ("linear", "Humanoid-v5", True),
     ("linear", "Humanoid-v4", True), ("mlp", "HalfCheetah-v5", True), ("linear", "HumanoidStandup-v5", True),
     ("linear", "HumanoidStandup-v4", True)],
)
def test_clip_actions_defaults_by_template_and_task(template: str, env_id: str, clip: bool) -> None:
    # Humanoid's +-0.4 range: raw linear actions made every episode fall within ~17 steps (es_defaults)
    assert parse_spec({"environment": {"id": env_id}, "policy": {"template": template}}).policy.clip_actions is clip
    assert parse_spec({"environment": {"id": env_id}, "policy": {"template": template, "clipActions": not clip}}).policy.clip_actions is not clip


@pytest.mark.parametrize(
    ("env_id", "top"),
    [("HalfCheetah-v5", None), ("Hopper-v4", None), ("Swimmer-v5", None), ("Humanoid-v5", None),
     ("InvertedPendulum-v5", None),  # these start from nearly one state: the best quarter (None)
     ("Reacher-v5", 0), ("Pusher-v5", 0), ("Pendulum-v1", 0), ("CartPole-v1", 0),  # a random start or goal
     ("mypkg.envs:HalfCheetah-v5", 0), ("mypkg.envs:Arm", 0)],  # an own environment: not known
)
def test_top_directions_default_by_whether_the_task_starts_from_one_state(env_id: str, top: int | None) -> None:
    # Reacher, all pairs against the best 8 of 32: a median of -5.6 against -6.4 on new episodes (es_defaults)
    assert parse_spec({"environment": {"id": env_id}}).es.top_directions == top
    assert parse_spec({"environment": {"id": env_id}, "es": {"topDirections": 3}}).es.top_directions == 3
    assert parse_spec({"environment": {"id": env_id}, "es": {"perturbationsPerWorker": 4}, "workers": {"replicas": 3}}).es.top_directions == top


@pytest.mark.parametrize(
    ("environment", "shift"),
    [
        ({"id": "Hopper-v5"}, 1.0),
        ({"id": "Walker2d-v4"}, 1.0),
        ({"id": "Ant-v5"}, 0.0),  # its control cost makes a shifted episode's every step cost
        ({"id": "Ant-v5", "kwargs": {"healthy_reward": 2.0}}, 0.0),
        ({"id": "Humanoid-v5"}, 5.0),
        ({"id": "Hopper-v5", "kwargs": {"healthy_reward": 0.5}}, 0.5),
        ({"id": "Hopper-v5", "kwargs": {"terminate_when_unhealthy": False}}, 0.0),
        ({"id": "InvertedDoublePendulum-v5"}, 0.0),  # staying up is the goal there
        ({"id": "HalfCheetah-v5"}, 0.0),
        ({"id": "mypkg.envs:Hopper-v5"}, 0.0),  # an own environment that borrows the name
    ],
)
def test_the_reward_shift_defaults_to_the_tasks_survival_bonus(environment: dict[str, Any], shift: float) -> None:
    assert parse_spec({"environment": environment}).es.reward_shift == shift
    assert parse_spec({"environment": environment, "es": {"rewardShift": 0.25}}).es.reward_shift == 0.25


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("policy.partitions", 0, "spec.policy.partitions: must be >= 1, got 0"),
        ("policy.template", "cnn", "spec.policy.template: must be one of linear, mlp; got 'cnn'"),
        ("policy.topology", "sparse", "spec.policy.topology: must be one of"),
        ("es.sigma", 0, "spec.es.sigma: must be > 0.0, got 0"),
        ("es.sigma", "big", "spec.es.sigma: must be a number, got string 'big'"),
        ("es.topDirections", 64, "spec.es.topDirections: must be <= perturbations (default 32 for a linear policy, 64 for an mlp), got 64"),
        ("es.fitnessShaping", "rank", "spec.es.fitnessShaping: must be one of none, zscore, centered_ranks"),
        ("es.observationNormalization", "yes", "spec.es.observationNormalization: must be true or false"),
        ("workers.replicas", -1, "spec.workers.replicas: must be >= 0, got -1"),
        ("workers.shardSize", 5000, "spec.workers.shardSize: must be <= 3000, got 5000"),
        ("stopping.maxIterations", 1.5, "spec.stopping.maxIterations: must be an integer, got float 1.5"),
        ("environment.id", "not a gym id", "spec.environment.id: must be a Gymnasium id"),
        ("environment.maxEpisodeSteps", 0, "spec.environment.maxEpisodeSteps: must be >= 1, got 0"),
        ("controller.type", "evolution", "spec.controller.type: fixed topologies (dense, toeplitz, circulant) have nothing to search; use 'none'; topology is 'dense'"),
        ("objectives.sizeWeight", 0.1, "spec.objectives.targetSize: required when sizeWeight > 0"),
        ("es.typo", 1, "spec.es.typo: unknown field"),
        ("typo", 1, "spec.typo: unknown field"),
        ("aggregator.checkpoint.storageSize", "lots", "spec.aggregator.checkpoint.storageSize: must be a Kubernetes quantity"),
        ("policy.hiddenLayers", [8] * 17, "spec.policy.hiddenLayers: must have at most 16 items, got 17"),
        ("workers.resources", {"requests": {"cpu": "lots"}}, "spec.workers.resources.requests.cpu: must be a Kubernetes quantity such as 500m, 2 or 1Gi, got 'lots'"),
        ("workers.resources", {"limits": {"memory": 0.5}}, "spec.workers.resources.limits.memory: must be an integer or a string, got float 0.5"),
        ("workers.resources", {"requets": {}}, "spec.workers.resources.requets: unknown field"),
        ("workers.tolerations", [{"operator": "Sideways"}], "spec.workers.tolerations[0].operator: must be one of Exists, Equal, ''; got 'Sideways'"),
        ("workers.affinity", {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}, "spec.workers.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: required"),
        ("workers.nodeSelector", {"disk": 1}, "spec.workers.nodeSelector.disk: must be a string, got integer 1"),
        ("environment.kwargs", {f"k{i}": i for i in range(65)}, "spec.environment.kwargs: must have at most 64 keys, got 65"),
        ("stopping.targetReward", float("inf"), "spec.stopping.targetReward: must be finite, got inf"),
    ],
)
def test_bad_field_names_field_and_reason(path: str, value: Any, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(_with(path, value))
    assert any(str(e).startswith(message) for e in info.value.errors), info.value


def test_every_bad_field_reported_at_once() -> None:
    spec = {"environment": {"id": "x"}, "es": {"sigma": -1, "perturbations": 0}}
    with pytest.raises(SpecError) as info:
        parse_spec(spec)
    paths = {e.path for e in info.value.errors}
    assert paths == {"spec.environment.id", "spec.es.sigma", "spec.es.perturbations"}


def test_perturbations_per_worker_follows_the_replicas() -> None:
    s = parse_spec({**BASE, "es": {"perturbationsPerWorker": 8, "exactEvals": 4}, "workers": {"replicas": 125}})
    assert (s.es.perturbations, s.es.perturbations_per_worker, s.es.exact_evals) == (1000, 8, 4)
    idle = parse_spec({**BASE, "es": {"perturbationsPerWorker": 8}, "workers": {"replicas": 0}})
    assert idle.es.perturbations == 8, "a fleet scaled to zero still plans one worker's share"
    fixed = parse_spec({**BASE, "es": {"perturbations": 64}, "workers": {"replicas": 125}})
    assert (fixed.es.perturbations, fixed.es.perturbations_per_worker) == (64, None)


def test_relays_per_worker_follow_the_fleet_and_exclude_a_fixed_count() -> None:
    def pods(replicas: int, relays: dict[str, Any]) -> int:
        s = parse_spec({**BASE, "workers": {"replicas": replicas}, "relays": relays})
        return s.relays.pods(s.workers.replicas)

    assert [pods(n, {"workersPerRelay": 250}) for n in (0, 1, 250, 251, 10_000)] == [1, 1, 1, 2, 40]
    assert [pods(n, {"replicas": 3}) for n in (0, 10_000)] == [3, 3]
    assert pods(10_000, {}) == 0
    assert pods(10_000, {"replicas": 0, "workersPerRelay": 500}) == 20  # replicas 0 is "no fixed count"
    with pytest.raises(SpecError) as info:
        parse_spec({**BASE, "relays": {"replicas": 4, "workersPerRelay": 500}})
    (err,) = info.value.errors
    assert err.path == "spec.relays.workersPerRelay"
    assert "spec.relays.replicas and spec.relays.workersPerRelay are mutually exclusive" in err.reason
    assert err.reason.endswith("; replicas is 4")
    with pytest.raises(SpecError) as info:
        parse_spec({**BASE, "relays": {"workersPerRelay": 10}})
    (err,) = info.value.errors
    assert err.path == "spec.relays.workersPerRelay" and "100" in err.reason


def test_perturbations_and_per_worker_are_exclusive() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({**BASE, "es": {"perturbations": 64, "perturbationsPerWorker": 8}})
    (err,) = info.value.errors
    assert err.path == "spec.es.perturbationsPerWorker"
    assert "spec.es.perturbations and spec.es.perturbationsPerWorker are mutually exclusive" in err.reason


def test_perturbations_per_worker_times_replicas_is_bounded() -> None:
    ok = parse_spec({**BASE, "es": {"perturbationsPerWorker": 10}, "workers": {"replicas": 100_000}})
    assert ok.es.perturbations == 1_000_000
    with pytest.raises(SpecError) as info:
        parse_spec({**BASE, "es": {"perturbationsPerWorker": 11}, "workers": {"replicas": 100_000}})
    (err,) = info.value.errors
    assert err.path == "spec.es.perturbationsPerWorker"
    assert err.reason == "11 x max(1, spec.workers.replicas 100000) = 1100000 perturbations; must be <= 1000000 perturbations"


def test_top_directions_names_where_the_population_came_from() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({**BASE, "es": {"perturbationsPerWorker": 2, "topDirections": 9}, "workers": {"replicas": 4}})
    assert [str(e) for e in info.value.errors] == [
        "spec.es.topDirections: must be <= perturbationsPerWorker x max(1, spec.workers.replicas) (2 x 4 = 8), got 9"
    ]


def test_missing_environment_id() -> None:
    with pytest.raises(SpecError, match=r"^spec.environment: required$"):
        parse_spec({})
    with pytest.raises(SpecError, match=r"^spec.environment.id: required: a Gymnasium id \(Name-vN, such as HalfCheetah-v5\), module:Class or module:Name-vN$"):
        parse_spec({"environment": {"kwargs": {}}})


def test_partition_needs_partitions() -> None:
    with pytest.raises(SpecError, match=r"^spec.policy.partitions: required when topology is 'partition'$"):
        parse_spec({**BASE, "policy": {"topology": "partition"}})


def test_dimension_checks() -> None:
    s = parse_spec({**BASE, "policy": {"topology": "partition", "partitions": 500}})
    errs = check_dimensions(s, 17, 6)
    assert [e.path for e in errs] == ["spec.policy.partitions"]
    assert "102" in errs[0].reason
    ok = parse_spec({**BASE, "policy": {"topology": "partition", "partitions": 17}})
    assert check_dimensions(ok, 17, 6) == []


def test_whole_resource_checks_header(tmp_path: Any) -> None:
    f = tmp_path / "job.yaml"
    f.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\nspec: {environment: {id: Hopper-v5}}\n")
    with pytest.raises(SpecError) as info:
        load_job(f)
    assert {e.path for e in info.value.errors} == {"apiVersion", "kind", "metadata.name"}


@pytest.mark.parametrize("path", sorted(glob.glob("manifests/examples/*.yaml")))
def test_examples_parse(path: str) -> None:
    job = load_job(path)
    assert job.spec.environment.id.endswith("-v5")


def test_a_spec_too_large_for_the_annotations_is_refused() -> None:
    """kubectl's and the operator's annotations each copy the spec; both must fit 256 KiB."""
    from esenas.spec import MAX_KWARGS_BYTES, MAX_SPEC_BYTES

    assert 2 * MAX_SPEC_BYTES + 64 * 1024 <= 256 * 1024
    big = {"environment": {"id": "HalfCheetah-v5", "kwargs": {"xml": "x" * (MAX_KWARGS_BYTES)}}}
    with pytest.raises(SpecError) as info:
        parse_spec(big)
    assert [e.path for e in info.value.errors] == ["spec.environment.kwargs"]
    assert info.value.errors[0].reason.endswith(f"must be at most {MAX_KWARGS_BYTES} (64 KiB)")
    values = [f"{i}" + "v" * 1000 for i in range(100)]  # node selector values: any text, any number of them
    term = {"matchExpressions": [{"key": "disk", "operator": "In", "values": values}]}
    huge = {**BASE, "workers": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}}}
    with pytest.raises(SpecError) as info:
        parse_spec(huge)
    (err,) = info.value.errors
    assert err.path == "spec" and "must be at most 98304 (96 KiB)" in err.reason
    fits = {"environment": {"id": "HalfCheetah-v5", "kwargs": {"xml": "x" * (MAX_KWARGS_BYTES - 20)}}}
    assert len(parse_spec(fits).environment.kwargs["xml"]) == MAX_KWARGS_BYTES - 20


def test_kwargs_that_gymnasium_make_takes_for_itself_are_refused_by_key() -> None:
    """render_mode would render every rollout (or fail without a display), max_episode_steps
    would clash with maxEpisodeSteps: both name the key and say where the setting lives."""
    spec = {"environment": {"id": "CartPole-v1", "kwargs": {"render_mode": "human", "max_episode_steps": 9, "sutton_barto_reward": True}}}
    with pytest.raises(SpecError) as info:
        parse_spec(spec)
    got = {e.path: e.reason for e in info.value.errors}
    assert set(got) == {"spec.environment.kwargs.render_mode", "spec.environment.kwargs.max_episode_steps"}
    assert got["spec.environment.kwargs.max_episode_steps"] == "is set by spec.environment.maxEpisodeSteps; move it there"
    assert got["spec.environment.kwargs.render_mode"].startswith("must not be set: rollouts never render")
    assert parse_spec({"environment": {"id": "CartPole-v1", "kwargs": {"sutton_barto_reward": True}}}).environment.kwargs


def test_null_is_absent_as_for_the_api_server() -> None:
    s = parse_spec({**BASE, "policy": {"template": "mlp", "hiddenLayers": None}, "workers": {"image": None}})
    assert s.policy.hidden_layers == (41,) and s.workers.image is None


def test_kubernetes_typed_fields_are_kept_as_given() -> None:
    workers = {
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": 2}},
        "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}},
        "nodeSelector": {"disk": "ssd"},
        "priorityClassName": "high",
    }
    w = parse_spec({**BASE, "workers": workers}).workers
    assert (w.resources, list(w.tolerations), w.affinity, w.node_selector, w.priority_class_name) == (
        workers["resources"], workers["tolerations"], workers["affinity"], workers["nodeSelector"], "high"
    )


def test_controller_settings_default_in_python_where_they_apply() -> None:
    s = parse_spec({**BASE, "policy": {"topology": "edges", "edges": 10}, "controller": {"type": "evolution"}})
    assert (s.controller.population_size, s.controller.tournament_size, s.policy.search_space) == (50, 0, "aggregate_edges")
    with pytest.raises(SpecError, match=r"^spec.controller.tournamentSize: must be <= populationSize \(50\), got 51$"):
        parse_spec({**BASE, "policy": {"topology": "edges", "edges": 10}, "controller": {"type": "evolution", "tournamentSize": 51}})


@pytest.mark.parametrize(
    ("spec", "line"),
    [
        ({"environment": {"id": "Humanoid-v5"}},
         "defaults for Humanoid-v5: es.rewardShift 5 (the task's survival bonus); policy.clipActions true "
         "(the task's narrow action range) (docs/tuning.md)"),
        ({"environment": {"id": "Hopper-v5"}}, "defaults for Hopper-v5: es.rewardShift 1 (the task's survival bonus) (docs/tuning.md)"),
        ({"environment": {"id": "Humanoid-v5"}, "es": {"rewardShift": 5.0}, "policy": {"clipActions": True}}, ""),  # set: not defaults
        ({"environment": {"id": "Humanoid-v5"}, "policy": {"template": "mlp"}},  # an mlp clips anyway: only the shift
         "defaults for Humanoid-v5: es.rewardShift 5 (the task's survival bonus) (docs/tuning.md)"),
        ({"environment": {"id": "HalfCheetah-v5"}}, ""),
        ({"environment": {"id": "Reacher-v5"}},
         "defaults for Reacher-v5: es.topDirections 0 (all pairs: a task not known to start from one state) (docs/tuning.md)"),
        ({"environment": {"id": "Reacher-v5"}, "es": {"topDirections": 0}}, ""),
    ],
)
def test_esenas_run_names_the_defaults_a_job_got_from_its_task(spec: dict[str, Any], line: str) -> None:
    job = load_job({"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob", "metadata": {"name": "j"}, "spec": spec})
    assert chosen_by_task(job) == line


@pytest.mark.parametrize(("controller", "message"), [
    ({"type": "evolution", "learningRate": 4}, "spec.controller.learningRate: used only by controller type 'policy_gradient'; the type is 'evolution'"),
    ({"mutationRate": 0.1}, "spec.controller.mutationRate: used only by controller type 'evolution'; the type is 'policy_gradient'"),
    ({"type": "random", "algorithm": "ppo"}, "spec.controller.algorithm: used only by controller type 'policy_gradient'; the type is 'random'"),
    ({"ppoEpochs": 3}, "spec.controller.ppoEpochs: used only by algorithm 'ppo'; the algorithm is 'reinforce'"),
])
def test_a_controller_field_its_type_does_not_read_is_refused(controller: dict[str, Any], message: str) -> None:
    """Ignored silently, it looked like a setting that mattered (the HalfCheetah example carried two)."""
    with pytest.raises(SpecError) as info:
        parse_spec({**BASE, "policy": {"topology": "partition", "partitions": 4}, "controller": controller})
    assert str(info.value) == message
    assert parse_spec({**BASE, "policy": {"topology": "partition", "partitions": 4},
                       "controller": {"algorithm": "ppo", "ppoEpochs": 3, "learningRate": 0.5}}).controller.ppo_epochs == 3


def test_a_search_space_without_edges_to_search_is_refused() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({**BASE, "policy": {"topology": "partition", "partitions": 4, "searchSpace": "independent_edges"}})
    assert str(info.value) == "spec.policy.searchSpace: only applies to topology 'edges', not 'partition'"
