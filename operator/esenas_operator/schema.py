"""The ESENASJob openAPIV3Schema, written once in Python so it cannot drift from esenas.spec.

Field names, defaults, bounds and enums mirror ``core/esenas/spec.py``; a unit test compares
the two. Cross-field rules are CEL ``x-kubernetes-validations`` that say the same as the parser.
Edits of a running job follow ``esenas.edits``: a ``self == oldSelf`` rule on each immutable path.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Final

from esenas import edits
from esenas import spec as S

Schema = dict[str, Any]

#: Largest lists accepted, so the API server can bound the cost of CEL rules.
MAX_HIDDEN_LAYERS: Final = 16
MAX_TOLERATIONS: Final = 64


def _int(desc: str, default: int | None = None, lo: int | None = None, hi: int | None = None) -> Schema:
    s: Schema = {"type": "integer", "description": desc}
    if hi is not None and hi > 2**53:
        s["format"] = "int64"
    if default is not None:
        s["default"] = default
    if lo is not None:
        s["minimum"] = lo
    if hi is not None:
        s["maximum"] = hi
    return s


def _num(
    desc: str,
    default: float | None = None,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
) -> Schema:
    s: Schema = {"type": "number", "description": desc}
    if default is not None:
        s["default"] = default
    if lo is not None:
        s["minimum"] = lo
        if lo_open:
            s["exclusiveMinimum"] = True
    if hi is not None:
        s["maximum"] = hi
    return s


def _str(desc: str, default: str | None = None, enum: tuple[str, ...] = (), **extra: Any) -> Schema:
    s: Schema = {"type": "string", "description": desc, **extra}
    if default is not None:
        s["default"] = default
    if enum:
        s["enum"] = list(enum)
    return s


def _obj(
    desc: str, props: dict[str, Schema], rules: Sequence[tuple[str, str]] = (), **extra: Any
) -> Schema:
    s: Schema = {"type": "object", "description": desc, "properties": props, **extra}
    if rules:
        s["x-kubernetes-validations"] = [{"rule": r, "message": m} for r, m in rules]
    return s


def _free(desc: str) -> Schema:
    """An object whose contents Kubernetes or the environment define, kept as given."""
    return {"type": "object", "description": desc, "x-kubernetes-preserve-unknown-fields": True}


def _defaulted(group: Schema) -> Schema:
    """A group defaulted to {} so the API server fills in its fields' defaults when it is omitted."""
    return {**group, "default": {}}


def _resources(who: str) -> Schema:
    qty: Schema = {
        "type": "object",
        "description": "Resource name (cpu, memory, ...) to quantity.",
        "additionalProperties": {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True},
    }
    return _obj(
        f"CPU and memory requests and limits of each {who} pod (a core/v1 ResourceRequirements).",
        {"requests": qty, "limits": qty},
    )


_SEARCHED = "[" + ", ".join(f"'{t}'" for t in S.SEARCHED_TOPOLOGIES) + "]"

ENVIRONMENT: Final = _obj(
    "The task to learn. Immutable: a running job cannot change its task.",
    {
        "id": _str(
            "A Gymnasium id such as HalfCheetah-v5, or module:Class of a gymnasium.Env. Its actions must be "
            "a continuous Box: discrete action spaces (CartPole-v1) are refused.",
            pattern=r"^((?:[\w.-]+/)?[A-Za-z][\w.-]*-v\d+|[A-Za-z_][\w.]*:[A-Za-z_]\w*)$",
            maxLength=253,
        ),
        "kwargs": _free("Keyword arguments passed to gymnasium.make or the class."),
        "maxEpisodeSteps": _int("Longest episode, in environment steps.", 1000, 1, 1_000_000),
        "maxAbsReward": _num(
            "Largest magnitude of one episode's return (before es.rewardShift) that a worker may report; "
            "larger ones are refused and counted as esenas_results_rejected_total{reason=\"reward_bound\"}. "
            "MuJoCo tasks stay within 1e5; raise it for an environment whose returns are larger.",
            1e6,
            0.0,
            1e300,
            lo_open=True,
        ),
    },
    required=["id"],
)

POLICY: Final = _obj(
    "The policy network and how its topology is searched. Immutable: the weights depend on it.",
    {
        "template": _str("linear, or mlp with tanh hidden layers.", "linear", S.TEMPLATES),
        "hiddenLayers": {
            "type": "array",
            "description": "Units per hidden layer of an mlp; [41] is the poster's H41. Empty for linear.",
            "items": {"type": "integer", "minimum": 1, "maximum": 4096},
            "maxItems": MAX_HIDDEN_LAYERS,
        },
        "topology": _str(
            "dense; partition (chromatic weight sharing); edges (keep k edges); masked; toeplitz; circulant.",
            "dense",
            S.TOPOLOGIES,
        ),
        "partitions": _int("Number of shared weights (colours) when topology is partition.", None, 1, 1_000_000),
        "edges": _int("Number of edges kept when topology is edges or masked.", None, 1, 10_000_000),
        "searchSpace": _str("Which edges the controller chooses from.", "aggregate_edges", S.SEARCH_SPACES),
    },
    [
        ("self.topology != 'partition' || has(self.partitions)", "spec.policy.partitions is required when topology is 'partition'"),
        ("self.topology == 'partition' || !has(self.partitions)", "spec.policy.partitions only applies to topology 'partition'"),
        ("!(self.topology in ['edges', 'masked']) || has(self.edges)", "spec.policy.edges is required when topology is 'edges' or 'masked'"),
        ("self.topology in ['edges', 'masked'] || !has(self.edges)", "spec.policy.edges only applies to topology 'edges' or 'masked'"),
        ("self.template != 'linear' || !has(self.hiddenLayers) || size(self.hiddenLayers) == 0", "spec.policy.hiddenLayers must be empty for template 'linear'; use template 'mlp'"),
        ("self.template != 'mlp' || !has(self.hiddenLayers) || size(self.hiddenLayers) > 0", "spec.policy.hiddenLayers: template 'mlp' needs at least one hidden layer, e.g. [41]"),
        ("self.searchSpace != 'residual_edges' || self.template == 'mlp'", "spec.policy.searchSpace 'residual_edges' needs template 'mlp'"),
    ],
)

CONTROLLER: Final = _obj(
    "The NAS controller that proposes topologies. Its type defaults to policy_gradient for searched "
    "topologies (partition, edges, masked) and to none for fixed ones.",
    {
        "type": _str("none, random, evolution (regularized) or policy_gradient.", None, S.CONTROLLERS),
        "populationSize": _int("Regularized evolution: population size.", 50, 2, 100_000),
        "tournamentSize": _int("Regularized evolution: tournament size; 0 means round(sqrt(populationSize)).", 0, 0, 100_000),
        "mutationRate": _num("Regularized evolution: chance to mutate each decision.", 0.05, 0.0, 1.0, lo_open=True),
        "learningRate": _num(
            "Policy gradient: learning rate of the logits. The default, 40 with reinforce, concentrates the "
            "controller within about 10 iterations; ppo needs its own, far lower rate.",
            S.ControllerSpec.learning_rate, 0.0, 100.0, lo_open=True,
        ),
        "algorithm": _str("Policy gradient: reinforce or ppo (clipped).", S.ControllerSpec.algorithm, S.PG_ALGORITHMS),
        "baselineDecay": _num("Policy gradient: decay of the reward baseline.", 0.95, 0.0, 1.0),
        "entropyWeight": _num("Policy gradient: entropy bonus weight.", 0.0, 0.0, 10.0),
        "ppoClip": _num("PPO: clip range.", 0.2, 0.0, 1.0, lo_open=True),
        "ppoEpochs": _int("PPO: epochs per batch of feedback.", 5, 1, 100),
    },
    [("self.tournamentSize <= self.populationSize", "spec.controller.tournamentSize must be <= populationSize")],
)

ES: Final = _obj(
    "Evolution strategies settings (ARS V2-t style).",
    {
        "sigma": _num("Perturbation scale nu.", 0.03, 0.0, 10.0, lo_open=True),
        "stepSize": _num("Step size alpha.", 0.02, 0.0, 100.0, lo_open=True),
        # No schema default: the API server defaults before it validates, so a default here would
        # always collide with perturbationsPerWorker. The parser uses 32 when neither is set.
        "perturbations": _int(
            f"Antithetic perturbation pairs per iteration (N); {S.ESSpec.perturbations} when neither this nor "
            "perturbationsPerWorker is set. Exclusive with perturbationsPerWorker.",
            None, 1, S.MAX_PERTURBATIONS,
        ),
        "perturbationsPerWorker": _int(
            "Antithetic perturbation pairs per worker: N = perturbationsPerWorker x max(1, workers.replicas), "
            "so the population follows kubectl scale and an HPA (from the next iteration the aggregator "
            f"sees the new spec). N must stay <= {S.MAX_PERTURBATIONS}. Exclusive with perturbations.",
            None, 1, S.MAX_PERTURBATIONS,
        ),
        "topDirections": _int(
            "Best directions used in the update (b); 0 means all. At most the effective perturbations.",
            0, 0, S.MAX_PERTURBATIONS,
        ),
        "exactEvals": _int(
            "Evaluations of the unperturbed parameters per iteration; the first re-scores the incumbent "
            "topology. Without them a policy's reward is that of a single perturbed rollout.",
            0, 0, 100_000,
        ),
        "fitnessShaping": _str("How rewards are shaped before the update.", "zscore", S.FITNESS_SHAPING),
        "optimizer": _str("sgd or adam.", "sgd", S.OPTIMIZERS),
        "observationNormalization": {"type": "boolean", "default": True, "description": "Normalise observations with running statistics (ARS V2)."},
        "rewardShift": _num("Subtracted from every step's reward (removes a survival bonus).", 0.0),
    },
    [
        (
            "!has(self.perturbations) || !has(self.perturbationsPerWorker)",
            "spec.es.perturbations and spec.es.perturbationsPerWorker are mutually exclusive: set one",
        ),
        ("!has(self.perturbations) || self.topDirections <= self.perturbations", "spec.es.topDirections must be <= perturbations"),
        (
            f"has(self.perturbations) || has(self.perturbationsPerWorker) || self.topDirections <= {S.ESSpec.perturbations}",
            f"spec.es.topDirections must be <= perturbations (default {S.ESSpec.perturbations})",
        ),
    ],
)

OBJECTIVES: Final = _obj(
    "How reward is traded against policy size.",
    {
        "sizeWeight": _num("Weight of the size term; 0 means reward only.", 0.0, 0.0, 10.0),
        "targetSize": _int("Target size for the MnasNet-style soft constraint.", None, 1),
        "sizeMethod": _str("mnasnet or linear size penalty.", "mnasnet", S.SIZE_METHODS),
    },
    [("self.sizeWeight == 0.0 || has(self.targetSize)", "spec.objectives.targetSize is required when sizeWeight > 0")],
)

STOPPING: Final = _obj(
    "When the job ends; the first rule met stops it.",
    {
        "maxIterations": _int("Most ES iterations.", 1000, 1, 100_000_000),
        "maxEnvSteps": _int("Most environment steps in all rollouts.", None, 1),
        "maxEpisodes": _int("Most episodes in all rollouts.", None, 1),
        "targetReward": _num("Stop once the best policy's own evaluated reward (status.bestReward) reaches this."),
        "deadlineSeconds": _int("Wall-clock limit from the start; past it the job Fails.", None, 1),
    },
)

WORKERS: Final = _obj(
    "The rollout worker fleet.",
    {
        "replicas": _int("Number of worker pods. kubectl scale changes it.", 4, 0, 100_000),
        "shardSize": _int("Most pods in one worker Deployment; larger fleets are sharded.", 1000, 1, 3000),
        "batchSize": _int("Work items a worker pulls at once.", 8, 1, 4096),
        "itemTimeoutSeconds": _num("After this, unfinished work is re-issued to another worker.", 60.0, 0.1, 86_400.0),
        "image": _str("Worker image; the operator's default when unset.", maxLength=512),
        "resources": _resources("worker"),
        "nodeSelector": {"type": "object", "description": "Node labels worker pods must match.", "additionalProperties": {"type": "string"}},
        "tolerations": {
            "type": "array",
            "description": "core/v1 Tolerations of worker pods.",
            "items": _free("A core/v1 Toleration."),
            "maxItems": MAX_TOLERATIONS,
        },
        "affinity": _free("A core/v1 Affinity for worker pods."),
        "priorityClassName": _str("PriorityClass of worker pods.", maxLength=253),
    },
)

AGGREGATOR: Final = _obj(
    "The central aggregator: ES update, NAS controller, checkpoints.",
    {
        "image": _str("Aggregator image; the operator's default when unset.", maxLength=512),
        "resources": _resources("aggregator"),
        "checkpoint": _defaulted(_obj(
            "Where and how often the aggregator checkpoints.",
            {
                "everyIterations": _int("Checkpoint every this many iterations.", 10, 1, 1_000_000),
                "storageSize": _str(
                    "Size of a PersistentVolumeClaim for checkpoints, e.g. 1Gi; unset means an emptyDir.",
                    pattern=r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$",
                ),
                "storageClassName": _str("StorageClass of the checkpoint claim.", maxLength=253),
            },
        )),
    },
)


def _immutable(spec: Schema) -> Schema:
    """``spec`` with a ``self == oldSelf`` rule on every path of :data:`esenas.edits.IMMUTABLE`, and
    the rule that keeps a running job from switching how it gives its population (a copy: the
    group constants above stay as they are)."""
    spec = copy.deepcopy(spec)
    for path in edits.IMMUTABLE:
        node = spec
        for key in path.split("."):
            node = node["properties"][key]
        node.setdefault("x-kubernetes-validations", []).append(
            {"rule": "self == oldSelf", "message": edits.immutable_message(path)}
        )
    rule, message = edits.ES_MODE_RULE
    spec["properties"]["es"]["x-kubernetes-validations"].append({"rule": rule, "message": message})
    return spec


#: perturbationsPerWorker x max(1, replicas): the population when it is given per worker. The spec's
#: es and workers groups and replicas are defaulted, so they are always there when rules run.
_PER_WORKER_N: Final = "self.es.perturbationsPerWorker * (self.workers.replicas > 0 ? self.workers.replicas : 1)"

SPEC: Final = _immutable(_obj(
    "What to train and how. The same mapping drives `esenas run` locally.",
    {
        "environment": ENVIRONMENT,
        "policy": _defaulted(POLICY),
        "controller": _defaulted(CONTROLLER),
        "es": _defaulted(ES),
        "objectives": _defaulted(OBJECTIVES),
        "stopping": _defaulted(STOPPING),
        "workers": _defaulted(WORKERS),
        "aggregator": _defaulted(AGGREGATOR),
        "seed": _int("Seed of the whole run; the run is deterministic given it.", 0, 0, 2**63 - 1),
        "suspend": {"type": "boolean", "default": False, "description": "true checkpoints and stops the job; false resumes it."},
        "ttlSecondsAfterFinished": _int("Delete the job this long after it Succeeded or Failed.", None, 0),
        "backoffLimit": _int("Aggregator restarts tolerated before the job Fails.", 3, 0, 1000),
    },
    [
        (
            f"!has(self.controller) || !has(self.controller.type) || "
            f"(has(self.policy) && self.policy.topology in {_SEARCHED}) == (self.controller.type != 'none')",
            "spec.controller.type: searched topologies (partition, edges, masked) need a controller "
            "(random, evolution, policy_gradient); fixed ones need 'none'",
        ),
        (
            f"!has(self.es.perturbationsPerWorker) || {_PER_WORKER_N} <= {S.MAX_PERTURBATIONS}",
            f"spec.es.perturbationsPerWorker x max(1, spec.workers.replicas) must be <= {S.MAX_PERTURBATIONS} perturbations",
        ),
        (
            f"!has(self.es.perturbationsPerWorker) || self.es.topDirections <= {_PER_WORKER_N}",
            "spec.es.topDirections must be <= perturbationsPerWorker x max(1, spec.workers.replicas)",
        ),
    ],
    required=["environment"],
))
