"""Spec checks that need the environment's sizes: a spec can pass the schema and still ask for
more partitions or edges than the network has (re-exported by :mod:`esenas.spec`)."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Final

from esenas.schema_model import FieldError

if TYPE_CHECKING:
    from esenas.spec import JobSpec


#: Most observation dimensions a job may have: the aggregator sizes its largest accepted request
#: (a batch's observation statistics, 16 bytes a dimension) for this many.
MAX_OBS_DIM: Final = 16_000
#: Most numbers a policy may emit (one score per action of a Discrete task): a Discrete(10**8)
#: would otherwise allocate its bounds before any check could refuse it (esenas.spaces).
MAX_ACT_DIM: Final = 16_000
#: Most weights a network may have: the controller keeps a decision per weight and every worker
#: builds them all (a [4096, 4096] MLP, 17M weights, passed every check and then overflowed
#: gRPC's 64 MiB message; 16 layers of 4096 exhausted memory).
MAX_WEIGHTS: Final = 2_000_000
#: Most numbers in the ES step's perturbation rows, pairs x trainable parameters (float64: 2 GiB).
MAX_STEP_NUMBERS: Final = 1 << 28


def check_dimensions(spec: JobSpec, obs_dim: int, act_dim: int) -> list[FieldError]:
    """Checks that need the environment's sizes: they pass the schema but make no sense."""
    errors: list[FieldError] = []
    if obs_dim > MAX_OBS_DIM:
        errors.append(
            FieldError(
                "spec.environment.id",
                f"the observation space has {obs_dim} dimensions: at most {MAX_OBS_DIM} are supported",
            )
        )
    layers = [obs_dim, *spec.policy.hidden_layers, act_dim]
    weights = sum(a * b for a, b in itertools.pairwise(layers))
    p = spec.policy
    errors += _size_errors(spec, obs_dim, act_dim, layers)
    if p.topology == "partition" and p.partitions is not None and p.partitions > weights:
        errors.append(
            FieldError(
                "spec.policy.partitions",
                f"must be <= the number of weights ({weights}) of a {layers} network, got {p.partitions}",
            )
        )
    if p.topology == "edges" and p.edges is not None:
        if p.search_space == "independent_edges":
            limit = min(a * b for a, b in itertools.pairwise(layers))
            what = "edges of the smallest layer"
        elif p.search_space in ("residual_edges", "path_edges"):
            limit = sum(layers[i] * layers[j] for i in range(len(layers)) for j in range(i + 1, len(layers)))
            what = "possible residual edges" if p.search_space == "residual_edges" else "candidate edges"
            if p.search_space == "path_edges" and p.edges < len(layers) - 1:  # a decision keeps a whole path
                errors.append(FieldError("spec.policy.edges", f"must be >= {len(layers) - 1} with searchSpace path_edges (a path "
                                                              f"from an observation to an action of a {layers} network), got {p.edges}"))
        else:
            limit, what = weights, "edges"
        if p.edges > limit:
            errors.append(
                FieldError("spec.policy.edges", f"must be <= the number of {what} ({limit}) of a {layers} network, got {p.edges}")
            )
    return errors


def _size_errors(spec: JobSpec, obs_dim: int, act_dim: int, layers: list[int]) -> list[FieldError]:
    """A network too big to search or to step: too many weights, or pairs x parameters."""
    from esenas.network import Architecture  # esenas.network imports the spec

    arch = Architecture(spec.policy, obs_dim, act_dim)
    if arch.candidate_weights > MAX_WEIGHTS:
        field = "spec.policy.hiddenLayers" if spec.policy.hidden_layers else "spec.environment.id"
        return [FieldError(field, f"a {layers} network has {arch.candidate_weights:,} weights: at most {MAX_WEIGHTS:,} are "
                                  "supported (the controller decides each, every worker builds them all)")]
    pairs = spec.es.perturbations
    if pairs * arch.num_params > MAX_STEP_NUMBERS:
        field = "spec.es.perturbations" if spec.es.perturbations_per_worker is None else "spec.es.perturbationsPerWorker"
        return [FieldError(field, f"{pairs:,} pairs of a policy with {arch.num_params:,} trainable parameters "
                                                     f"need {pairs * arch.num_params * 8 / 2**30:.1f} GiB for the ES step's perturbations: "
                                                     f"at most {MAX_STEP_NUMBERS * 8 / 2**30:.0f} GiB (pairs x parameters <= {MAX_STEP_NUMBERS:,}); "
                                                     "fewer pairs or a more compact policy")]
    return []


def unsupported_actions(env_id: str, space: str) -> FieldError:
    """The error for an action space no vector policy can emit (Tuple, Dict, Text; see
    :mod:`esenas.spaces`, which adapts Discrete, MultiDiscrete and MultiBinary ones)."""
    return FieldError(
        "spec.environment.id",
        f"{env_id!r} has an action space a policy cannot emit ({space}): supported are Box, "
        "Discrete, MultiDiscrete and MultiBinary actions",
    )
