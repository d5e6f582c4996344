"""The ESENASJob spec: parsed once, at the edge, into frozen typed objects.

The same dict drives `esenas run JOB.yaml` locally, the aggregator and worker
pods, and the operator. YAML keys are camelCase (Kubernetes style); Python
attributes are snake_case. Every bad field is reported with its path and the
reason, e.g. ``spec.policy.partitions: must be >= 1, got 0``; all bad fields
are reported at once, so a user fixes a file in one pass.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar, cast

from esenas.safe_yaml import YamlFileError, load_yaml_file

API_GROUP: Final = "esenas.dev"
API_VERSION: Final = "esenas.dev/v1alpha1"
KIND: Final = "ESENASJob"

TEMPLATES: Final = ("linear", "mlp")
TOPOLOGIES: Final = ("dense", "partition", "edges", "masked", "toeplitz", "circulant")
#: Topologies that a NAS controller searches over; the others are fixed.
SEARCHED_TOPOLOGIES: Final = ("partition", "edges", "masked")
SEARCH_SPACES: Final = ("aggregate_edges", "independent_edges", "residual_edges")
CONTROLLERS: Final = ("none", "random", "evolution", "policy_gradient")
PG_ALGORITHMS: Final = ("reinforce", "ppo")
FITNESS_SHAPING: Final = ("none", "zscore", "centered_ranks")
OPTIMIZERS: Final = ("sgd", "adam")
SIZE_METHODS: Final = ("mnasnet", "linear")
#: Most antithetic pairs in one iteration, however they are given (perturbations, or per worker).
MAX_PERTURBATIONS: Final = 1_000_000

_GYM_ID: Final = re.compile(r"^(?:[\w.-]+/)?[A-Za-z][\w.-]*-v\d+$")
_MODULE_CLASS: Final = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_DNS1123: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class FieldError:
    """One bad field: its dotted path and why it is bad."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class SpecError(ValueError):
    """A job spec that cannot run. Carries every bad field, each with its own message."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


# --------------------------------------------------------------------------- typed spec


@dataclass(frozen=True)
class EnvironmentSpec:
    id: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    max_episode_steps: int = 1000
    #: Largest plausible |episode return|; a worker's result beyond it is refused (reward_bound).
    max_abs_reward: float = 1e6


@dataclass(frozen=True)
class PolicySpec:
    template: str = "linear"
    hidden_layers: tuple[int, ...] = ()
    topology: str = "dense"
    partitions: int | None = None
    edges: int | None = None
    search_space: str = "aggregate_edges"


@dataclass(frozen=True)
class ControllerSpec:
    type: str = "none"
    population_size: int = 50
    tournament_size: int = 0  # 0: round(sqrt(population_size))
    mutation_rate: float = 0.05
    # REINFORCE at 40 concentrates the controller within ~10 iterations, so the ES trains the
    # weights for a few topologies; PPO at 0.05 stayed near uniform (bench/results/learning.md).
    learning_rate: float = 40.0
    algorithm: str = "reinforce"
    baseline_decay: float = 0.95
    entropy_weight: float = 0.0
    ppo_clip: float = 0.2
    ppo_epochs: int = 5


@dataclass(frozen=True)
class ESSpec:
    """ES settings. ``perturbations`` is always the effective number of pairs per iteration: with
    ``perturbations_per_worker`` set it is that times ``max(1, workers.replicas)``."""

    sigma: float = 0.03
    step_size: float = 0.02
    perturbations: int = 32
    perturbations_per_worker: int | None = None
    top_directions: int = 0  # 0: use all perturbation pairs
    exact_evals: int = 0
    fitness_shaping: str = "zscore"
    optimizer: str = "sgd"
    observation_normalization: bool = True
    reward_shift: float = 0.0


@dataclass(frozen=True)
class ObjectivesSpec:
    size_weight: float = 0.0  # 0: reward only
    target_size: int | None = None
    size_method: str = "mnasnet"


@dataclass(frozen=True)
class StoppingSpec:
    max_iterations: int = 1000
    max_env_steps: int | None = None
    max_episodes: int | None = None
    target_reward: float | None = None
    deadline_seconds: int | None = None


@dataclass(frozen=True)
class WorkersSpec:
    replicas: int = 4
    shard_size: int = 1000
    batch_size: int = 8
    item_timeout_seconds: float = 60.0
    image: str | None = None
    resources: Mapping[str, Any] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    affinity: Mapping[str, Any] = field(default_factory=dict)
    priority_class_name: str | None = None


@dataclass(frozen=True)
class CheckpointSpec:
    every_iterations: int = 10
    storage_size: str | None = None  # None: emptyDir; else a PVC of this size
    storage_class_name: str | None = None


@dataclass(frozen=True)
class AggregatorSpec:
    image: str | None = None
    resources: Mapping[str, Any] = field(default_factory=dict)
    checkpoint: CheckpointSpec = field(default_factory=CheckpointSpec)


@dataclass(frozen=True)
class JobSpec:
    environment: EnvironmentSpec
    policy: PolicySpec = field(default_factory=PolicySpec)
    controller: ControllerSpec = field(default_factory=ControllerSpec)
    es: ESSpec = field(default_factory=ESSpec)
    objectives: ObjectivesSpec = field(default_factory=ObjectivesSpec)
    stopping: StoppingSpec = field(default_factory=StoppingSpec)
    workers: WorkersSpec = field(default_factory=WorkersSpec)
    aggregator: AggregatorSpec = field(default_factory=AggregatorSpec)
    seed: int = 0
    suspend: bool = False
    ttl_seconds_after_finished: int | None = None
    backoff_limit: int = 3


@dataclass(frozen=True)
class Job:
    """A whole ESENASJob: name, namespace and its parsed spec."""

    name: str
    namespace: str
    spec: JobSpec
    raw_spec: Mapping[str, Any]


# --------------------------------------------------------------------------- parsing helpers

T = TypeVar("T")
_MISSING: Final = object()


class _Reader:
    """Reads one mapping, recording every problem instead of stopping at the first."""

    def __init__(self, data: Any, path: str, errors: list[FieldError]) -> None:
        self.path = path
        self.errors = errors
        self.seen: set[str] = set()
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            errors.append(FieldError(path, f"must be an object, got {_type_name(data)}"))
            data = {}
        self.data: Mapping[str, Any] = data

    def _p(self, key: str) -> str:
        return f"{self.path}.{key}"

    def fail(self, key: str, reason: str) -> None:
        self.errors.append(FieldError(self._p(key), reason))

    def raw(self, key: str) -> Any:
        self.seen.add(key)
        return self.data.get(key, _MISSING)

    def sub(self, key: str) -> _Reader:
        v = self.raw(key)
        return _Reader(None if v is _MISSING else v, self._p(key), self.errors)

    def integer(
        self, key: str, default: int | None, lo: int | None = None, hi: int | None = None
    ) -> int | None:
        v = self.raw(key)
        if v is _MISSING or v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int):
            self.fail(key, f"must be an integer, got {_type_name(v)} {v!r}")
            return default
        return cast("int | None", self._bounds(key, v, lo, hi, default))

    def number(
        self,
        key: str,
        default: float | None,
        lo: float | None = None,
        hi: float | None = None,
        lo_open: bool = False,
    ) -> float | None:
        v = self.raw(key)
        if v is _MISSING or v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int | float):
            self.fail(key, f"must be a number, got {_type_name(v)} {v!r}")
            return default
        if not math.isfinite(v):
            self.fail(key, f"must be finite, got {v!r}")
            return default
        if lo is not None and lo_open and v <= lo:
            self.fail(key, f"must be > {lo}, got {v}")
            return default
        return cast("float | None", self._bounds(key, float(v), lo, hi, default))

    def _bounds(self, key: str, v: Any, lo: Any, hi: Any, default: Any) -> Any:
        if lo is not None and v < lo:
            self.fail(key, f"must be >= {lo}, got {v}")
            return default
        if hi is not None and v > hi:
            self.fail(key, f"must be <= {hi}, got {v}")
            return default
        return v

    def boolean(self, key: str, default: bool) -> bool:
        v = self.raw(key)
        if v is _MISSING or v is None:
            return default
        if not isinstance(v, bool):
            self.fail(key, f"must be true or false, got {_type_name(v)} {v!r}")
            return default
        return v

    def string(self, key: str, default: str | None, choices: Sequence[str] = ()) -> str | None:
        v = self.raw(key)
        if v is _MISSING or v is None:
            return default
        if not isinstance(v, str):
            self.fail(key, f"must be a string, got {_type_name(v)} {v!r}")
            return default
        if choices and v not in choices:
            self.fail(key, f"must be one of {', '.join(choices)}; got {v!r}")
            return default
        return v

    def mapping(self, key: str) -> dict[str, Any]:
        v = self.raw(key)
        if v is _MISSING or v is None:
            return {}
        if not isinstance(v, Mapping):
            self.fail(key, f"must be an object, got {_type_name(v)}")
            return {}
        return dict(v)

    def sequence(self, key: str) -> list[Any]:
        v = self.raw(key)
        if v is _MISSING or v is None:
            return []
        if not isinstance(v, list):
            self.fail(key, f"must be a list, got {_type_name(v)}")
            return []
        return v

    def finish(self) -> None:
        """Unknown keys are errors: a typo must not silently fall back to a default."""
        for key in self.data:
            if key not in self.seen:
                self.fail(str(key), "unknown field")


def _type_name(v: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(v), type(v).__name__
    )


def _req(v: T | None) -> T:
    assert v is not None
    return v


# --------------------------------------------------------------------------- the parser


def parse_spec(spec: Any, path: str = "spec") -> JobSpec:
    """Parse a raw ``spec`` mapping into a :class:`JobSpec`, or raise :class:`SpecError`."""
    errors: list[FieldError] = []
    r = _Reader(spec, path, errors)

    e = r.sub("environment")
    env_id = e.string("id", None)
    if env_id is None and "id" not in e.data:
        e.fail("id", "required: a Gymnasium id such as HalfCheetah-v5, or module:Class")
    elif env_id is not None and not (_GYM_ID.match(env_id) or _MODULE_CLASS.match(env_id)):
        e.fail("id", f"must be a Gymnasium id (Name-vN) or module:Class, got {env_id!r}")
    environment = EnvironmentSpec(
        id=env_id or "",
        kwargs=e.mapping("kwargs"),
        max_episode_steps=_req(e.integer("maxEpisodeSteps", 1000, 1, 1_000_000)),
        max_abs_reward=_req(e.number("maxAbsReward", 1e6, 0.0, 1e300, lo_open=True)),
    )
    e.finish()

    p = r.sub("policy")
    template = _req(p.string("template", "linear", TEMPLATES))
    hidden: list[int] = []
    for i, h in enumerate(p.sequence("hiddenLayers")):
        if isinstance(h, bool) or not isinstance(h, int) or not 1 <= h <= 4096:
            p.fail(f"hiddenLayers[{i}]", f"must be an integer in [1, 4096], got {h!r}")
        else:
            hidden.append(h)
    if template == "linear" and hidden:
        p.fail("hiddenLayers", "must be empty for template 'linear'; use template 'mlp'")
    if template == "mlp" and not hidden and "hiddenLayers" not in p.data:
        hidden = [41]  # the poster's H41
    elif template == "mlp" and not p.data.get("hiddenLayers"):
        p.fail("hiddenLayers", "template 'mlp' needs at least one hidden layer, e.g. [41]")
    topology = _req(p.string("topology", "dense", TOPOLOGIES))
    partitions = p.integer("partitions", None, 1, 1_000_000)
    edges = p.integer("edges", None, 1, 10_000_000)
    search_space = _req(p.string("searchSpace", "aggregate_edges", SEARCH_SPACES))
    if topology == "partition" and partitions is None and "partitions" not in p.data:
        p.fail("partitions", "required when topology is 'partition'")
    if topology in ("edges", "masked") and edges is None and "edges" not in p.data:
        p.fail("edges", f"required when topology is {topology!r}")
    if partitions is not None and topology != "partition":
        p.fail("partitions", f"only applies to topology 'partition', not {topology!r}")
    if edges is not None and topology not in ("edges", "masked"):
        p.fail("edges", f"only applies to topology 'edges' or 'masked', not {topology!r}")
    if search_space == "residual_edges" and template == "linear":
        p.fail("searchSpace", "'residual_edges' needs template 'mlp' (a linear policy has one layer)")
    policy = PolicySpec(template, tuple(hidden), topology, partitions, edges, search_space)
    p.finish()

    c = r.sub("controller")
    default_ctrl = "policy_gradient" if topology in SEARCHED_TOPOLOGIES else "none"
    ctype = _req(c.string("type", default_ctrl, CONTROLLERS))
    if topology in SEARCHED_TOPOLOGIES and ctype == "none":
        c.fail("type", f"topology {topology!r} needs a controller: random, evolution or policy_gradient")
    if topology not in SEARCHED_TOPOLOGIES and ctype != "none":
        c.fail("type", f"topology {topology!r} is fixed, there is nothing to search; use 'none'")
    pop = _req(c.integer("populationSize", 50, 2, 100_000))
    controller = ControllerSpec(
        type=ctype,
        population_size=pop,
        tournament_size=_req(c.integer("tournamentSize", 0, 0, 100_000)),
        mutation_rate=_req(c.number("mutationRate", 0.05, 0.0, 1.0, lo_open=True)),
        learning_rate=_req(c.number("learningRate", ControllerSpec.learning_rate, 0.0, 100.0, lo_open=True)),
        algorithm=_req(c.string("algorithm", ControllerSpec.algorithm, PG_ALGORITHMS)),
        baseline_decay=_req(c.number("baselineDecay", 0.95, 0.0, 1.0)),
        entropy_weight=_req(c.number("entropyWeight", 0.0, 0.0, 10.0)),
        ppo_clip=_req(c.number("ppoClip", 0.2, 0.0, 1.0, lo_open=True)),
        ppo_epochs=_req(c.integer("ppoEpochs", 5, 1, 100)),
    )
    if controller.tournament_size > pop:
        c.fail("tournamentSize", f"must be <= populationSize ({pop}), got {controller.tournament_size}")
    c.finish()

    o = r.sub("objectives")
    objectives = ObjectivesSpec(
        size_weight=_req(o.number("sizeWeight", 0.0, 0.0, 10.0)),
        target_size=o.integer("targetSize", None, 1),
        size_method=_req(o.string("sizeMethod", "mnasnet", SIZE_METHODS)),
    )
    if objectives.size_weight > 0 and objectives.target_size is None:
        o.fail("targetSize", "required when sizeWeight > 0")
    o.finish()

    st = r.sub("stopping")
    stopping = StoppingSpec(
        max_iterations=_req(st.integer("maxIterations", 1000, 1, 100_000_000)),
        max_env_steps=st.integer("maxEnvSteps", None, 1),
        max_episodes=st.integer("maxEpisodes", None, 1),
        target_reward=st.number("targetReward", None),
        deadline_seconds=st.integer("deadlineSeconds", None, 1),
    )
    st.finish()

    w = r.sub("workers")
    tolerations = w.sequence("tolerations")
    for i, t in enumerate(tolerations):
        if not isinstance(t, Mapping):
            w.fail(f"tolerations[{i}]", f"must be an object, got {_type_name(t)}")
    workers = WorkersSpec(
        replicas=_req(w.integer("replicas", 4, 0, 100_000)),
        shard_size=_req(w.integer("shardSize", 1000, 1, 3000)),
        batch_size=_req(w.integer("batchSize", 8, 1, 4096)),
        item_timeout_seconds=_req(w.number("itemTimeoutSeconds", 60.0, 0.1, 86_400.0)),
        image=w.string("image", None),
        resources=w.mapping("resources"),
        node_selector=w.mapping("nodeSelector"),
        tolerations=tuple(t for t in tolerations if isinstance(t, Mapping)),
        affinity=w.mapping("affinity"),
        priority_class_name=w.string("priorityClassName", None),
    )
    w.finish()

    # After workers: with perturbationsPerWorker the population follows the replica count.
    s = r.sub("es")
    fixed = s.integer("perturbations", None, 1, MAX_PERTURBATIONS)
    per_worker = s.integer("perturbationsPerWorker", None, 1, MAX_PERTURBATIONS)
    perturbations = ESSpec.perturbations if fixed is None else fixed
    origin = f"perturbations ({perturbations})"
    if per_worker is not None and s.data.get("perturbations") is not None:
        s.fail(
            "perturbationsPerWorker",
            "cannot be set together with spec.es.perturbations: give the population either per "
            "iteration (perturbations) or per worker (perturbationsPerWorker), not both",
        )
    elif per_worker is not None:
        fleet = max(1, workers.replicas)
        perturbations = per_worker * fleet
        origin = (
            f"the effective perturbations ({perturbations} = perturbationsPerWorker {per_worker} "
            f"x max(1, workers.replicas {workers.replicas}))"
        )
        if perturbations > MAX_PERTURBATIONS:
            s.fail(
                "perturbationsPerWorker",
                f"{per_worker} x max(1, spec.workers.replicas {workers.replicas}) = {perturbations} "
                f"perturbations; must be <= {MAX_PERTURBATIONS}",
            )
            perturbations = MAX_PERTURBATIONS
    top = _req(s.integer("topDirections", 0, 0, MAX_PERTURBATIONS))
    if top > perturbations:
        s.fail("topDirections", f"must be <= {origin}, got {top}")
    es = ESSpec(
        sigma=_req(s.number("sigma", 0.03, 0.0, 10.0, lo_open=True)),
        step_size=_req(s.number("stepSize", 0.02, 0.0, 100.0, lo_open=True)),
        perturbations=perturbations,
        perturbations_per_worker=per_worker,
        top_directions=top,
        exact_evals=_req(s.integer("exactEvals", 0, 0, 100_000)),
        fitness_shaping=_req(s.string("fitnessShaping", "zscore", FITNESS_SHAPING)),
        optimizer=_req(s.string("optimizer", "sgd", OPTIMIZERS)),
        observation_normalization=s.boolean("observationNormalization", True),
        reward_shift=_req(s.number("rewardShift", 0.0)),
    )
    s.finish()

    a = r.sub("aggregator")
    ck = a.sub("checkpoint")
    checkpoint = CheckpointSpec(
        every_iterations=_req(ck.integer("everyIterations", 10, 1, 1_000_000)),
        storage_size=ck.string("storageSize", None),
        storage_class_name=ck.string("storageClassName", None),
    )
    if checkpoint.storage_size is not None and not re.match(
        r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$", checkpoint.storage_size
    ):
        ck.fail("storageSize", f"must be a Kubernetes quantity such as 1Gi, got {checkpoint.storage_size!r}")
    ck.finish()
    aggregator = AggregatorSpec(
        image=a.string("image", None), resources=a.mapping("resources"), checkpoint=checkpoint
    )
    a.finish()

    job = JobSpec(
        environment=environment,
        policy=policy,
        controller=controller,
        es=es,
        objectives=objectives,
        stopping=stopping,
        workers=workers,
        aggregator=aggregator,
        seed=_req(r.integer("seed", 0, 0, 2**63 - 1)),
        suspend=r.boolean("suspend", False),
        ttl_seconds_after_finished=r.integer("ttlSecondsAfterFinished", None, 0),
        backoff_limit=_req(r.integer("backoffLimit", 3, 0, 1000)),
    )
    r.finish()
    if errors:
        raise SpecError(errors)
    return job


def check_dimensions(spec: JobSpec, obs_dim: int, act_dim: int) -> list[FieldError]:
    """Checks that need the environment's sizes: they pass the schema but make no sense."""
    errors: list[FieldError] = []
    layers = [obs_dim, *spec.policy.hidden_layers, act_dim]
    weights = sum(a * b for a, b in itertools.pairwise(layers))
    p = spec.policy
    if p.topology == "partition" and p.partitions is not None and p.partitions > weights:
        errors.append(
            FieldError(
                "spec.policy.partitions",
                f"must be <= the number of weights ({weights}) of a {layers} network, got {p.partitions}",
            )
        )
    if p.topology in ("edges", "masked") and p.edges is not None:
        if p.search_space == "independent_edges":
            limit = min(a * b for a, b in itertools.pairwise(layers))
            what = "edges of the smallest layer"
        elif p.search_space == "residual_edges":
            limit = sum(layers[i] * layers[j] for i in range(len(layers)) for j in range(i + 1, len(layers)))
            what = "possible residual edges"
        else:
            limit, what = weights, "edges"
        if p.edges > limit:
            errors.append(
                FieldError("spec.policy.edges", f"must be <= the number of {what} ({limit}) of a {layers} network, got {p.edges}")
            )
    return errors


def unsupported_actions(env_id: str, space: str) -> FieldError:
    """The error for an environment whose actions are not a continuous Box: policies here emit
    real-valued actions (ES-ENAS, ARS), so a discrete space cannot be driven."""
    return FieldError(
        "spec.environment.id",
        f"{env_id!r} has a discrete action space ({space}): only continuous Box actions are supported",
    )


def load_job(source: str | Path | Mapping[str, Any]) -> Job:
    """Load a whole ESENASJob (the file a user would ``kubectl apply``) and parse its spec."""
    if isinstance(source, Mapping):
        doc: Any = source
        where = "<object>"
    else:
        where = str(source)
        try:
            docs = load_yaml_file(source)
        except YamlFileError as exc:
            raise SpecError([FieldError(where, str(exc))]) from exc
        if len(docs) != 1:
            raise SpecError([FieldError(where, f"must hold exactly one ESENASJob, found {len(docs)} documents")])
        doc = docs[0]
    if not isinstance(doc, Mapping):
        raise SpecError([FieldError(where, f"must be an ESENASJob object, got {_type_name(doc)}")])
    errors: list[FieldError] = []
    if doc.get("apiVersion") != API_VERSION:
        errors.append(FieldError("apiVersion", f"must be {API_VERSION!r}, got {doc.get('apiVersion')!r}"))
    if doc.get("kind") != KIND:
        errors.append(FieldError("kind", f"must be {KIND!r}, got {doc.get('kind')!r}"))
    meta = doc.get("metadata") or {}
    name = meta.get("name") if isinstance(meta, Mapping) else None
    if not isinstance(name, str) or not _DNS1123.match(name) or len(name) > 52:
        errors.append(
            FieldError("metadata.name", f"must be a DNS-1123 label of at most 52 characters, got {name!r}")
        )
    namespace = meta.get("namespace", "default") if isinstance(meta, Mapping) else "default"
    raw_spec = doc.get("spec")
    try:
        spec = parse_spec(raw_spec)
    except SpecError as exc:
        errors.extend(exc.errors)
        spec = None
    if errors or spec is None:
        raise SpecError(errors)
    return Job(name=str(name), namespace=str(namespace), spec=spec, raw_spec=dict(raw_spec or {}))
