"""The ESENASJob spec: one typed model, parsed once, at the edge, into frozen typed objects.

The same dict drives `esenas run JOB.yaml` locally, the aggregator and worker pods, and the
operator. YAML keys are camelCase (Kubernetes style); Python attributes are snake_case.
The dataclasses below (with the pod knobs of ``esenas.spec_deploy``, and the checks that need
the environment's sizes in ``esenas.spec_checks``, both re-exported) are the single source of
truth: each field carries its description, default (the parser's, where it depends on other
fields), bounds, enum and pattern (``spec_field``). From them :func:`openapi_schema` generates
the CRD's openAPIV3Schema (``esenas.schema_model``), with the cross-field rules of
``esenas.schema_rules`` as CEL; :func:`parse_spec` checks a raw spec against that same schema
(``esenas.schema_validate``), then those same rules in Python (``esenas.schema_parse``). Every
bad field is reported with its path and the reason, e.g. ``spec.policy.partitions: must be >= 1,
got 0``; all bad fields are reported at once, so a user fixes a file in one pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final

from esenas.es_defaults import CLIP_DEFAULT, SHIFT_DEFAULT, TOP_DEFAULT, mlp_default
from esenas.schema_k8s import QUANTITY_PATTERN
from esenas.schema_model import FieldError, Schema, SpecError, spec_field
from esenas.spec_checks import check_dimensions, unsupported_actions
from esenas.spec_deploy import (
    AGGREGATOR_RESOURCES_DEFAULT,
    MAX_TOLERATIONS,
    RELAY_RESOURCES_DEFAULT,
    WORKER_RESOURCES_DEFAULT,
    AggregatorSpec,
    CheckpointSpec,
    RelaysSpec,
    WorkersSpec,
)
from esenas.spec_trials import TrialsSpec
from esenas.topology import KINDS, RENAMED_KINDS

__all__ = [
    "AGGREGATOR_RESOURCES_DEFAULT", "MAX_TOLERATIONS", "RELAY_RESOURCES_DEFAULT", "WORKER_RESOURCES_DEFAULT",
    "AggregatorSpec", "CheckpointSpec", "ControllerSpec", "ESSpec", "EnvironmentSpec", "FieldError", "Job",
    "JobSpec", "ObjectivesSpec", "PolicySpec", "RelaysSpec", "SpecError", "StoppingSpec", "TrialsSpec", "WorkersSpec",
    "check_dimensions", "load_job", "openapi_schema", "parse_spec", "unsupported_actions",
]

API_GROUP: Final = "esenas.dev"
API_VERSION: Final = "esenas.dev/v1alpha1"
KIND: Final = "ESENASJob"

TEMPLATES: Final = ("linear", "mlp")
TOPOLOGIES: Final = KINDS
#: Topologies that a NAS controller searches over; the others are fixed.
SEARCHED_TOPOLOGIES: Final = ("partition", "edges")
SEARCH_SPACES: Final = ("aggregate_edges", "independent_edges", "residual_edges", "path_edges")
CONTROLLERS: Final = ("none", "random", "evolution", "policy_gradient")
PG_ALGORITHMS: Final = ("reinforce", "ppo")
FITNESS_SHAPING: Final = ("none", "zscore", "centered_ranks")
OPTIMIZERS: Final = ("sgd", "adam")
SIZE_METHODS: Final = ("mnasnet", "linear")
#: How workers step the task: esenas.native for the Gymnasium v5 MuJoCo tasks it covers, or Gymnasium.
STEPPERS: Final = ("auto", "native", "gymnasium")
#: Most antithetic pairs in one iteration, however they are given (perturbations, or per worker).
MAX_PERTURBATIONS: Final = 1_000_000
#: Largest lists accepted, so the API server can bound the cost of CEL rules (and MAX_TOLERATIONS).
MAX_HIDDEN_LAYERS: Final = 16
#: Size bounds, in bytes of compact JSON. Kubernetes caps an object's annotations at 256 KiB, and client-side `kubectl apply`
#: copies the whole object into one; the operator keeps its own (kopf's diff base) in status.kopf, under etcd's 1.5 MiB. The CRD
#: cannot measure a serialized size, so the parser checks these (InvalidSpec before anything is created); the CRD bounds kwargs' keys.
MAX_SPEC_BYTES: Final = 96 * 1024
MAX_KWARGS_BYTES: Final = 64 * 1024
MAX_KWARGS_KEYS: Final = 64

#: A registry id (Name-vN, namespace/Name-vN), module:Class, or module:Name-vN (Gymnasium's form:
#: importing the module registers the id). esenas.envload builds each. ASCII classes: Python's \w and \d match any script.
GYM_PATTERN: Final = r"^((?:[A-Za-z0-9_.-]+/)?[A-Za-z][A-Za-z0-9_.-]*-v[0-9]+|[A-Za-z_][A-Za-z0-9_.]*:(?:[A-Za-z_][A-Za-z0-9_]*|(?:[A-Za-z0-9_.-]+/)?[A-Za-z][A-Za-z0-9_.-]*-v[0-9]+))$"
#: What each pattern means, for the parser's messages ("must be a Kubernetes quantity ..., got 'lots'").
PATTERN_HINTS: Final = {
    GYM_PATTERN: "a Gymnasium id (Name-vN, such as HalfCheetah-v5), module:Class or module:Name-vN",
    QUANTITY_PATTERN: "a Kubernetes quantity such as 500m, 2 or 1Gi",
}

_EVOLUTION: Final = "when type is evolution (the only type that uses it)"
_PG: Final = "when type is policy_gradient (the only type that uses it)"
_PPO: Final = "when algorithm is ppo (the only algorithm that uses it)"


@dataclass(frozen=True)
class EnvironmentSpec:
    DOC: ClassVar[str] = "The task to learn. Immutable: a running job cannot change its task."

    id: str = spec_field(
        "A Gymnasium id such as HalfCheetah-v5; module:Class of a gymnasium.Env (built as Class(**kwargs)); "
        "or module:Name-vN, an id that importing the module registers (gymnasium.make's own form). The "
        "module must be importable in the aggregator's and the workers' images (docs/own-environment.md). "
        "Actions: Box, Discrete (the argmax of one score each), MultiDiscrete, MultiBinary; observations are flattened.",
        pattern=GYM_PATTERN,
        max_length=253,
    )
    kwargs: Mapping[str, Any] = spec_field(
        f"Keyword arguments for gymnasium.make or the class (not render_mode or max_episode_steps). At most {MAX_KWARGS_KEYS} keys and "
        f"{MAX_KWARGS_BYTES // 1024} KiB as JSON (the whole spec at most {MAX_SPEC_BYTES // 1024} KiB), so "
        "kubectl apply's copy of the job fits Kubernetes' 256 KiB of annotations.",
        default_factory=dict,
        schema={"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        max_properties=MAX_KWARGS_KEYS,
    )
    max_episode_steps: int | None = spec_field(
        "Longest episode, in environment steps. Unset: the limit the task is registered with, as "
        "gymnasium.make applies it (Reacher-v5 50, Pusher-v5 100, the locomotion tasks 1000); 1000 for a "
        "module:Class or a task registered without one.", None, minimum=1, maximum=1_000_000)
    stepper: str = spec_field(
        "How workers step the task. auto: esenas' native MuJoCo stepper when it covers the id and kwargs "
        "(the Gymnasium v5 MuJoCo locomotion and pendulum tasks; same observations, rewards and "
        "terminations, fewer CPU-seconds), else Gymnasium. native: that stepper, or the worker fails when "
        "it does not cover the task. gymnasium: always gymnasium.make.",
        "auto",
        enum=STEPPERS,
    )
    #: Largest plausible |episode return|; a worker's result beyond it is refused (reward_bound).
    max_abs_reward: float = spec_field(
        "Largest magnitude of one episode's return (before es.rewardShift) that a worker may report; "
        "larger ones are refused and counted as esenas_results_rejected_total{reason=\"reward_bound\"}, and "
        "the same item out of bounds for two workers fails the job (reason RewardOutOfBounds). "
        "MuJoCo tasks stay within 1e5; raise it for an environment whose returns are larger.",
        1e6,
        minimum=0.0,
        maximum=1e300,
        exclusive_minimum=True,
    )


@dataclass(frozen=True)
class PolicySpec:
    DOC: ClassVar[str] = "The policy network and how its topology is searched. Immutable: the weights depend on it."

    template: str = spec_field("linear, or mlp with tanh hidden layers.", "linear", enum=TEMPLATES)
    hidden_layers: tuple[int, ...] = spec_field(
        "Units per hidden layer of an mlp; [41] (the poster's H41) when the template is mlp and this is "
        "unset. Empty for linear.",
        (),
        items={"type": "integer", "minimum": 1, "maximum": 4096},
        max_items=MAX_HIDDEN_LAYERS,
    )
    topology: str = spec_field(
        "dense; partition (chromatic weight sharing); edges (edge pruning: keep k edges); toeplitz; "
        "circulant. The CLI still reads masked, the former name of edges, from old job files.",
        "dense",
        enum=TOPOLOGIES,
    )
    partitions: int | None = spec_field("Number of shared weights (colours) when topology is partition.", None, minimum=1, maximum=1_000_000)
    edges: int | None = spec_field("Number of edges kept when topology is edges.", None, minimum=1, maximum=10_000_000)
    search_space: str = spec_field(
        "Which edges the controller chooses from: aggregate_edges (any k), independent_edges (k per layer), residual_edges (also "
        "edges that skip layers), path_edges (whole observation-to-action paths through one unit of each hidden layer, or direct "
        "edges; at most k edges, all live).", "aggregate_edges", enum=SEARCH_SPACES, when="when topology is edges (the only topology that uses it)")
    init_std: float | None = spec_field(
        "Standard deviation of the initial weights (normal, mean 0; biases start at 0). Unset: 0 for linear (as ARS); for an mlp "
        "1/sqrt(a layer's inputs), or 1/sqrt(the observation size) for the shared weights of a partition.", None, minimum=0.0, maximum=100.0)
    clip_actions: bool | None = spec_field(
        "Clip actions to the task's action space; unclipped, MuJoCo clamps the control but its cost sees the "
        f"raw action (ARS's linear policies). Scores of discrete actions are never clipped. Defaults to false {CLIP_DEFAULT}.", None,
    )

    def __post_init__(self) -> None:
        # A renamed kind from an old checkpoint or saved policy (esenas.topology.RENAMED_KINDS):
        # ``masked`` always pruned from all edges, whatever its searchSpace said.
        if self.topology in RENAMED_KINDS:
            object.__setattr__(self, "topology", RENAMED_KINDS[self.topology])
            object.__setattr__(self, "search_space", "aggregate_edges")
        if self.clip_actions is None:  # built in code, or a policy saved before the field: by template
            object.__setattr__(self, "clip_actions", self.template == "mlp")


@dataclass(frozen=True)
class ControllerSpec:
    DOC: ClassVar[str] = "The NAS controller that proposes topologies."

    type: str = spec_field(
        "none, random, evolution (regularized) or policy_gradient.",
        "none",
        enum=CONTROLLERS,
        when="for fixed topologies (dense, toeplitz, circulant); policy_gradient for searched ones "
        "(partition, edges)",
    )
    population_size: int = spec_field("Regularized evolution: population size.", 50, minimum=2, maximum=100_000, when=_EVOLUTION)
    tournament_size: int = spec_field(
        "Regularized evolution: tournament size; 0 means round(sqrt(populationSize)).", 0, minimum=0, maximum=100_000, when=_EVOLUTION
    )
    mutation_rate: float = spec_field(
        "Regularized evolution: chance to mutate each decision.", 0.05, minimum=0.0, maximum=1.0, exclusive_minimum=True, when=_EVOLUTION
    )
    # REINFORCE at 40 concentrates the controller within ~10 iterations, so the ES trains the
    # weights for a few topologies; PPO at 0.05 stayed near uniform (bench/results/learning-history.md).
    learning_rate: float = spec_field(
        "Policy gradient: learning rate of the logits. 40 with reinforce concentrates the controller within "
        "about 10 iterations; ppo needs its own, far lower rate.",
        40.0,
        minimum=0.0,
        maximum=100.0,
        exclusive_minimum=True,
        when=_PG,
    )
    algorithm: str = spec_field("Policy gradient: reinforce or ppo (clipped).", "reinforce", enum=PG_ALGORITHMS, when=_PG)
    baseline_decay: float = spec_field("Policy gradient: decay of the reward baseline, held within 2 deviations of each iteration's mean.", 0.95, minimum=0.0, maximum=1.0, when=_PG)
    entropy_weight: float = spec_field("Policy gradient: entropy bonus weight.", 0.0, minimum=0.0, maximum=10.0, when=_PG)
    ppo_clip: float = spec_field("PPO: clip range.", 0.2, minimum=0.0, maximum=1.0, exclusive_minimum=True, when=_PPO)
    ppo_epochs: int = spec_field("PPO: epochs per batch of feedback.", 5, minimum=1, maximum=100, when=_PPO)


@dataclass(frozen=True)
class ESSpec:
    """ES settings. ``perturbations`` is always the effective number of pairs per iteration: with
    ``perturbations_per_worker`` set it is that times ``max(1, workers.replicas)``."""

    DOC: ClassVar[str] = "Evolution strategies settings (ARS V2-t style)."

    # Defaults by template (MLP_ES_DEFAULTS): the CRD has none of these, the parser fills them in.
    sigma: float = spec_field("Perturbation scale nu.", 0.03, minimum=0.0, maximum=10.0, exclusive_minimum=True, when=mlp_default("sigma"))
    step_size: float = spec_field("Step size alpha.", 0.02, minimum=0.0, maximum=100.0, exclusive_minimum=True, when=mlp_default("stepSize"))
    step_size_end_fraction: float = spec_field(
        "Step-size schedule: the step falls linearly from stepSize to this fraction of it as the budget is used (the largest of "
        "iterations / stopping.maxIterations, env steps / maxEnvSteps and episodes / maxEpisodes). 1 keeps it constant.",
        1.0, minimum=0.0, maximum=1.0, exclusive_minimum=True)
    perturbations: int = spec_field(
        "Antithetic perturbation pairs per iteration (N). Exclusive with perturbationsPerWorker.",
        32,
        minimum=1,
        maximum=MAX_PERTURBATIONS,
        when=mlp_default("perturbations") + ", when perturbationsPerWorker is not set",
    )
    perturbations_per_worker: int | None = spec_field(
        "Antithetic perturbation pairs per worker: N = perturbationsPerWorker x max(1, workers.replicas), "
        "so the population follows kubectl scale and an HPA (from the next iteration the aggregator "
        f"sees the new spec). N must stay <= {MAX_PERTURBATIONS}. Exclusive with perturbations.",
        None,
        minimum=1,
        maximum=MAX_PERTURBATIONS,
    )
    top_directions: int | None = spec_field(
        "Best directions used in the update (b, ARS V2-t): the pairs whose better rollout scored "
        "highest; 0 means all pairs. At most the effective perturbations. Defaults to " + TOP_DEFAULT
        + "; measured against all pairs in docs/tuning.md.",
        None, minimum=0, maximum=MAX_PERTURBATIONS,
    )
    exact_evals: int = spec_field(
        "Evaluations of the unperturbed parameters per iteration; half re-score the incumbent topology (at first the first one), "
        "the rest sample topologies. The best policy is the centre under the topology whose exact evals "
        "(at least half of them) scored the highest mean; without them it is the single perturbed rollout "
        "that scored highest, which on a noisy task is a lucky episode (docs/tuning.md).",
        8, minimum=0, maximum=100_000,
    )
    min_pairs_fraction: float = spec_field(
        "Straggler policy: an iteration may close once this fraction of its pairs (each with both "
        "rollouts) and all its exact evals are in and every pair has been handed out "
        "(docs/operations.md); pairs still out that come in during the next iteration join its update "
        "(one step stale), the others are dropped. 1 waits for every pair.",
        1.0,
        minimum=0.5,
        maximum=1.0,
    )
    fitness_shaping: str = spec_field("How rewards are shaped before the update.", "zscore", enum=FITNESS_SHAPING, when=mlp_default("fitnessShaping"))
    optimizer: str = spec_field("sgd or adam.", "sgd", enum=OPTIMIZERS, when=mlp_default("optimizer"))
    observation_normalization: bool = spec_field("Normalise observations with running statistics (ARS V2).", True)
    reward_shift: float = spec_field("Subtracted from every step's reward (a survival bonus).", 0.0, when=SHIFT_DEFAULT)


@dataclass(frozen=True)
class ObjectivesSpec:
    DOC: ClassVar[str] = "How reward is traded against policy size."

    size_weight: float = spec_field("Weight of the size term; 0 means reward only.", 0.0, minimum=0.0, maximum=10.0)
    target_size: int | None = spec_field("Target size for the MnasNet-style soft constraint.", None, minimum=1)
    size_method: str = spec_field(
        "mnasnet or linear size penalty.", "mnasnet", enum=SIZE_METHODS, when="when sizeWeight > 0 (it is unused otherwise)"
    )


@dataclass(frozen=True)
class StoppingSpec:
    DOC: ClassVar[str] = "When the job ends; the first rule met stops it."

    max_iterations: int = spec_field("Most ES iterations.", 1000, minimum=1, maximum=100_000_000)
    max_env_steps: int | None = spec_field("Most environment steps in all rollouts.", None, minimum=1)
    max_episodes: int | None = spec_field("Most episodes in all rollouts.", None, minimum=1)
    target_reward: float | None = spec_field(
        "Stop once the best policy's own evaluated reward (status.bestReward) reaches this.", None
    )
    deadline_seconds: int | None = spec_field("Training-time limit: once the aggregator has trained this long (over restarts) it stops, mid-iteration if need be, and the job Succeeds (DeadlineReached) with its best policy; a job whose aggregator does not answer past it, or that runs 300 s past it by the wall clock from status.startTime, Fails (DeadlineExceeded).", None, minimum=1)


@dataclass(frozen=True)
class JobSpec:
    DOC: ClassVar[str] = (
        "What to train and how. The same mapping drives `esenas run` locally. At most "
        f"{MAX_SPEC_BYTES // 1024} KiB as JSON, so that kubectl apply's copy (an annotation) fits "
        "Kubernetes' 256 KiB for all annotations; a larger spec fails the job with reason InvalidSpec."
    )

    environment: EnvironmentSpec
    policy: PolicySpec = field(default_factory=PolicySpec)
    controller: ControllerSpec = field(default_factory=ControllerSpec)
    es: ESSpec = field(default_factory=ESSpec)
    objectives: ObjectivesSpec = field(default_factory=ObjectivesSpec)
    stopping: StoppingSpec = field(default_factory=StoppingSpec)
    trials: TrialsSpec = field(default_factory=TrialsSpec)
    workers: WorkersSpec = field(default_factory=WorkersSpec)
    aggregator: AggregatorSpec = field(default_factory=AggregatorSpec)
    relays: RelaysSpec = field(default_factory=RelaysSpec)
    seed: int = spec_field("Seed of the whole run; the run is deterministic given it.", 0, minimum=0, maximum=2**63 - 1)
    suspend: bool = spec_field("true checkpoints and stops the job; false resumes it.", False)
    ttl_seconds_after_finished: int | None = spec_field(
        "Delete the job this long after it Succeeded or Failed.", None, minimum=0
    )
    backoff_limit: int = spec_field("Aggregator restarts tolerated before the job Fails.", 3, minimum=0, maximum=1000)


@dataclass(frozen=True)
class Job:
    """A whole ESENASJob: name, namespace and its parsed spec."""

    name: str
    namespace: str
    spec: JobSpec
    raw_spec: Mapping[str, Any]


# --------------------------------------------------------------------------- entry points


def openapi_schema() -> Schema:
    """The spec's openAPIV3Schema (a fresh copy), with its cross-field rules as CEL: the CRD's
    ``spec``, before the operator adds its immutability rules."""
    from esenas.schema_parse import spec_schema

    return spec_schema()


def parse_spec(spec: Any, path: str = "spec") -> JobSpec:
    """Parse a raw ``spec`` mapping into a :class:`JobSpec`, or raise :class:`SpecError`."""
    from esenas.schema_parse import parse

    return parse(spec, path)


def load_job(source: str | Path | Mapping[str, Any]) -> Job:
    """Load a whole ESENASJob (the file a user would ``kubectl apply``) and parse its spec."""
    from esenas.schema_parse import load

    return load(source)
