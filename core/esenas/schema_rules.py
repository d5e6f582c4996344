"""The spec's cross-field rules, in one table: each rule is a CEL expression for the CRD and the
same check in Python for the parser, with one message for both.

A message is a template. The CRD shows it with each placeholder's ``symbols`` text (a CEL
message is static); the parser fills the placeholders with the values of the spec at hand, so
`esenas run` says ``spec.es.topDirections: must be <= perturbations (32), got 64`` where the API
server says ``spec.es.topDirections must be <= perturbations``. When a message starts with the
blamed field's path, the parser drops it (and a following "is"), since its error names the path
already: ``spec.policy.partitions: required when topology is 'partition'``.

The Python checks run on the spec as the API server sees it: nulls pruned and schema defaults
applied (``esenas.schema_validate.normalize``). Fields whose default depends on the
configuration are not defaulted there, so a check uses the dataclass default, as CEL does with
``has(...) ? ... : default``. A rule is skipped when a field it reads is already bad.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from esenas.es_defaults import MLP_ES_DEFAULTS
from esenas.schema_model import FieldError, Schema
from esenas.schema_rulebase import Rule, Spec
from esenas.schema_rulebase import fails as _fails
from esenas.schema_rulebase import group as _grp
from esenas.schema_rules_limits import LIMIT_RULES
from esenas.schema_rules_trials import TRIAL_RULES
from esenas.spec import (
    MAX_PERTURBATIONS,
    SEARCHED_TOPOLOGIES,
    ControllerSpec,
    ESSpec,
)


def _fleet(s: Spec) -> int:
    return max(1, int(_grp(s, "workers").get("replicas", 1)))


def _per_worker(s: Spec) -> dict[str, str] | None:
    es = _grp(s, "es")
    pw = es.get("perturbationsPerWorker")
    if pw is None:
        return None
    n = pw * _fleet(s)
    return _fails(n > MAX_PERTURBATIONS, product=f"{pw} x max(1, spec.workers.replicas {_grp(s, 'workers').get('replicas')}) = {n}")


def _top_per_worker(s: Spec) -> dict[str, str] | None:
    es = _grp(s, "es")
    pw = es.get("perturbationsPerWorker")
    if pw is None:
        return None
    n, top = pw * _fleet(s), es.get("topDirections", 0)
    return _fails(top > n, values=f" ({pw} x {_fleet(s)} = {n}), got {top}")


def _tournament(c: Spec) -> dict[str, str] | None:
    pop = c.get("populationSize", ControllerSpec.population_size)
    t = c.get("tournamentSize", ControllerSpec.tournament_size)
    return _fails(t > pop, values=f" ({pop}), got {t}")


_SEARCHED: Final = "[" + ", ".join(f"'{t}'" for t in SEARCHED_TOPOLOGIES) + "]"
#: perturbationsPerWorker x max(1, replicas): the population when it is given per worker. The spec's
#: es and workers groups and replicas are defaulted, so they are always there when rules run.
_PER_WORKER_N: Final = "self.es.perturbationsPerWorker * (self.workers.replicas > 0 ? self.workers.replicas : 1)"
_DEFAULT_N: Final = ESSpec.perturbations
_MLP_N: Final = MLP_ES_DEFAULTS["perturbations"]


def _top_default(s: Spec) -> dict[str, str] | None:
    es = _grp(s, "es")
    n = _MLP_N if _grp(s, "policy").get("template") == "mlp" else _DEFAULT_N
    return _fails("perturbations" not in es and "perturbationsPerWorker" not in es and es.get("topDirections", 0) > n, got=f", got {es.get('topDirections')}")


def _topology(s: Spec) -> Any:
    return _grp(s, "policy").get("topology")


#: The controller type a spec runs: its own, else the default for its topology (spec.ControllerSpec).
_CONTROLLER_TYPE_CEL: Final = f"(has(self.controller.type) ? self.controller.type : (self.policy.topology in {_SEARCHED} ? 'policy_gradient' : 'none'))"


def _controller_type(s: Spec) -> Any:
    return _grp(s, "controller").get("type") or ("policy_gradient" if _topology(s) in SEARCHED_TOPOLOGIES else "none")


def _only_for_type(field: str, want: str) -> Rule:
    """A controller field that only type ``want`` reads: set with another type, it would be ignored."""
    return Rule(
        "", f"controller.{field}", f"!has(self.controller.{field}) || {_CONTROLLER_TYPE_CEL} == '{want}'",
        f"spec.controller.{field} is used only by controller type '{want}'{{actual}}",
        lambda s: _fails(field in _grp(s, "controller") and _controller_type(s) != want, actual=f"; the type is {_controller_type(s)!r}"),
        ("policy.topology", "controller.type", f"controller.{field}"),
        {"actual": ""},
    )


def _only_for_ppo(field: str) -> Rule:
    return Rule(
        "controller", field, f"!has(self.{field}) || (has(self.algorithm) && self.algorithm == 'ppo')",
        f"spec.controller.{field} is used only by algorithm 'ppo'{{actual}}",
        lambda c: _fails(field in c and c.get("algorithm") != "ppo", actual=f"; the algorithm is {c.get('algorithm', 'reinforce')!r}"),
        ("controller.algorithm", f"controller.{field}"),
        {"actual": ""},
    )


#: Set with another type (or algorithm), these would be silently ignored; the CRD says which reads each.
_CONTROLLER_FIELDS: Final = (
    *(_only_for_type(f, "evolution") for f in ("populationSize", "tournamentSize", "mutationRate")),
    *(_only_for_type(f, "policy_gradient") for f in ("learningRate", "algorithm", "baselineDecay", "entropyWeight")),
    *(_only_for_ppo(f) for f in ("ppoClip", "ppoEpochs")),
)

RULES: Final[tuple[Rule, ...]] = (
    Rule(
        "policy", "partitions", "self.topology != 'partition' || has(self.partitions)",
        "spec.policy.partitions is required when topology is 'partition'",
        lambda s: _fails(s["topology"] == "partition" and "partitions" not in s),
        ("policy.topology", "policy.partitions"),
    ),
    Rule(
        "policy", "partitions", "self.topology == 'partition' || !has(self.partitions)",
        "spec.policy.partitions only applies to topology 'partition'{actual}",
        lambda s: _fails(s["topology"] != "partition" and "partitions" in s, actual=f", not {s['topology']!r}"),
        ("policy.topology", "policy.partitions"),
        {"actual": ""},
    ),
    Rule(
        "policy", "edges", "self.topology != 'edges' || has(self.edges)",
        "spec.policy.edges is required when topology is 'edges'",
        lambda s: _fails(s["topology"] == "edges" and "edges" not in s),
        ("policy.topology", "policy.edges"),
    ),
    Rule(
        "policy", "edges", "self.topology == 'edges' || !has(self.edges)",
        "spec.policy.edges only applies to topology 'edges'{actual}",
        lambda s: _fails(s["topology"] != "edges" and "edges" in s, actual=f", not {s['topology']!r}"),
        ("policy.topology", "policy.edges"),
        {"actual": ""},
    ),
    Rule(
        "policy", "hiddenLayers", "self.template != 'linear' || !has(self.hiddenLayers) || size(self.hiddenLayers) == 0",
        "spec.policy.hiddenLayers must be empty for template 'linear'; use template 'mlp'",
        lambda s: _fails(s["template"] == "linear" and bool(s.get("hiddenLayers"))),
        ("policy.template", "policy.hiddenLayers"),
    ),
    Rule(
        "policy", "hiddenLayers", "self.template != 'mlp' || !has(self.hiddenLayers) || size(self.hiddenLayers) > 0",
        "spec.policy.hiddenLayers: template 'mlp' needs at least one hidden layer, e.g. [41]",
        lambda s: _fails(s["template"] == "mlp" and s.get("hiddenLayers") == []),
        ("policy.template", "policy.hiddenLayers"),
    ),
    Rule(
        "policy", "searchSpace", "self.topology == 'edges' || !has(self.searchSpace)",
        "spec.policy.searchSpace only applies to topology 'edges'{actual}",
        lambda s: _fails(s["topology"] != "edges" and "searchSpace" in s, actual=f", not {s['topology']!r}"),
        ("policy.topology", "policy.searchSpace"),
        {"actual": ""},
    ),
    Rule(
        "policy", "searchSpace", "!has(self.searchSpace) || !(self.searchSpace in ['residual_edges', 'path_edges']) || self.template == 'mlp'",
        "spec.policy.searchSpace{space} needs template 'mlp' (a linear policy has one layer)",
        lambda s: _fails(s.get("searchSpace") in ("residual_edges", "path_edges") and s["template"] != "mlp", space=f" {s.get('searchSpace')!r}"),
        ("policy.template", "policy.searchSpace"),
        {"space": " 'residual_edges' or 'path_edges'"},
    ),
    Rule(
        "controller", "tournamentSize",
        f"(has(self.tournamentSize) ? self.tournamentSize : {ControllerSpec.tournament_size}) <= "
        f"(has(self.populationSize) ? self.populationSize : {ControllerSpec.population_size})",
        "spec.controller.tournamentSize must be <= populationSize{values}",
        _tournament,
        ("controller.tournamentSize", "controller.populationSize"),
        {"values": ""},
    ),
    Rule(
        "", "controller.type", f"!has(self.controller.type) || !(self.policy.topology in {_SEARCHED}) || self.controller.type != 'none'",
        "spec.controller.type: searched topologies (partition, edges) need a controller: random, evolution "
        "or policy_gradient{actual}",
        lambda s: _fails(_topology(s) in SEARCHED_TOPOLOGIES and _grp(s, "controller").get("type") == "none", actual=f"; topology is {_topology(s)!r}"),
        ("policy.topology", "controller.type"),
        {"actual": ""},
    ),
    Rule(
        "", "controller.type", f"!has(self.controller.type) || self.policy.topology in {_SEARCHED} || self.controller.type == 'none'",
        "spec.controller.type: fixed topologies (dense, toeplitz, circulant) have nothing to search; use 'none'{actual}",
        lambda s: _fails(
            _topology(s) not in SEARCHED_TOPOLOGIES and _grp(s, "controller").get("type", "none") != "none",
            actual=f"; topology is {_topology(s)!r}",
        ),
        ("policy.topology", "controller.type"),
        {"actual": ""},
    ),
    Rule(
        "es", "perturbationsPerWorker", "!has(self.perturbations) || !has(self.perturbationsPerWorker)",
        "spec.es.perturbations and spec.es.perturbationsPerWorker are mutually exclusive: give the population "
        "either per iteration (perturbations) or per worker (perturbationsPerWorker), not both",
        lambda s: _fails("perturbations" in s and "perturbationsPerWorker" in s),
        ("es.perturbations", "es.perturbationsPerWorker"),
    ),
    Rule(
        "es", "topDirections", "!has(self.perturbations) || !has(self.topDirections) || self.topDirections <= self.perturbations",
        "spec.es.topDirections must be <= perturbations{values}",
        lambda s: _fails("perturbations" in s and s.get("topDirections", 0) > s["perturbations"], values=f" ({s.get('perturbations')}), got {s.get('topDirections')}"),
        ("es.perturbations", "es.topDirections"),
        {"values": ""},
    ),
    Rule(
        "", "es.topDirections",
        "has(self.es.perturbations) || has(self.es.perturbationsPerWorker) || !has(self.es.topDirections) || "
        f"self.es.topDirections <= (self.policy.template == 'mlp' ? {_MLP_N} : {_DEFAULT_N})",
        f"spec.es.topDirections must be <= perturbations (default {_DEFAULT_N} for a linear policy, {_MLP_N} for an mlp){{got}}",
        _top_default,
        ("policy.template", "es.perturbations", "es.perturbationsPerWorker", "es.topDirections"),
        {"got": ""},
    ),
    Rule(
        "", "es.perturbationsPerWorker", f"!has(self.es.perturbationsPerWorker) || {_PER_WORKER_N} <= {MAX_PERTURBATIONS}",
        "spec.es.perturbationsPerWorker: {product} perturbations; must be <= " + f"{MAX_PERTURBATIONS} perturbations",
        _per_worker,
        ("es.perturbationsPerWorker", "workers.replicas"),
        {"product": "perturbationsPerWorker x max(1, spec.workers.replicas) gives N"},
    ),
    Rule(
        "", "es.topDirections",
        f"!has(self.es.perturbationsPerWorker) || !has(self.es.topDirections) || self.es.topDirections <= {_PER_WORKER_N}",
        "spec.es.topDirections must be <= perturbationsPerWorker x max(1, spec.workers.replicas){values}",
        _top_per_worker,
        ("es.perturbationsPerWorker", "es.topDirections", "workers.replicas"),
        {"values": ""},
    ),
    Rule(
        "relays", "workersPerRelay", "!has(self.workersPerRelay) || !has(self.replicas) || self.replicas == 0",
        "spec.relays.replicas and spec.relays.workersPerRelay are mutually exclusive: give the relay count "
        "(replicas) or the workers each relay serves (workersPerRelay), not both{got}",
        lambda s: _fails("workersPerRelay" in s and s.get("replicas", 0) > 0, got=f"; replicas is {s.get('replicas')}"),
        ("relays.replicas", "relays.workersPerRelay"),
        {"got": ""},
    ),
    *LIMIT_RULES,
    *TRIAL_RULES,
    *_CONTROLLER_FIELDS,
    Rule(
        "objectives", "targetSize", "self.sizeWeight == 0.0 || has(self.targetSize)",
        "spec.objectives.targetSize is required when sizeWeight > 0",
        lambda s: _fails(s["sizeWeight"] > 0 and "targetSize" not in s),
        ("objectives.sizeWeight", "objectives.targetSize"),
    ),
)


def _node(schema: Schema, path: str) -> Schema:
    for key in filter(None, path.split(".")):
        schema = schema["properties"][key]
    return schema


def with_rules(schema: Schema) -> Schema:
    """A copy of the spec's schema with every rule as an ``x-kubernetes-validations`` entry."""
    schema = copy.deepcopy(schema)
    for rule in RULES:
        entry: dict[str, str] = {"rule": rule.cel, "message": rule.message.format(**rule.symbols)}
        if rule.field:
            entry["fieldPath"] = "." + rule.field
        _node(schema, rule.scope).setdefault("x-kubernetes-validations", []).append(entry)
    return schema


def _bad(used: str, errors: list[FieldError], root: str) -> bool:
    path = f"{root}.{used}"
    for e in errors:
        if e.path == path or path.startswith(e.path + ".") or e.path.startswith((path + ".", path + "[")):
            return True
    return False


def violations(spec: Spec, errors: list[FieldError], root: str = "spec") -> list[FieldError]:
    """The rules ``spec`` (normalized) breaks, as errors; rules that read a field in ``errors`` are skipped."""
    out: list[FieldError] = []
    for rule in RULES:
        if any(_bad(u, errors, root) for u in rule.uses):
            continue
        target = spec
        for key in filter(None, rule.scope.split(".")):
            target = _grp(target, key)
        values = rule.check(target)
        if values is None:
            continue
        message = rule.message.format(**{**rule.symbols, **values})
        if message.startswith(rule.path) and message[len(rule.path)] in ": ":
            message = message[len(rule.path) :].lstrip(":").lstrip().removeprefix("is ")
        out.append(FieldError(root + rule.path[len("spec") :], message))
    return out
