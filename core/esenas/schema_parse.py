"""The parser: a raw spec is checked against the generated schema, then the cross-field rules,
then built into the frozen dataclasses of ``esenas.spec``.

1. Size: the spec as compact JSON is at most ``MAX_SPEC_BYTES``, ``environment.kwargs`` at most
   ``MAX_KWARGS_BYTES`` (see esenas.spec for why).
2. The API server's pipeline on the same schema the CRD carries: nulls pruned, schema defaults
   applied, unknown fields refused (kubectl's strict field validation), structural checks.
3. The checks the API server makes of the pods and the claim the operator makes from the spec
   (esenas.schema_quantity, esenas.schema_pod), and the cross-field rules (esenas.schema_rules):
   the Python side of the CRD's CEL, and what CEL cannot afford to check.
4. The defaults that depend on the configuration, which the CRD leaves out so that `kubectl
   describe` shows only fields that apply: controller.type by topology, hiddenLayers [41] and
   the ES settings of esenas.es_defaults.MLP_ES_DEFAULTS for an mlp, es.rewardShift by task
   (esenas.es_defaults), the effective perturbations, and every other field's dataclass default.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from esenas.es_defaults import MLP_ES_DEFAULTS, clip_actions, survival_bonus, top_directions
from esenas.safe_yaml import YamlFileError, load_yaml_file
from esenas.schema_k8s import K8S_PATTERN_HINTS
from esenas.schema_meta import document_errors
from esenas.schema_model import FieldError, Schema, SpecError, camel, object_schema
from esenas.schema_pod import pod_errors
from esenas.schema_quantity import quantity_errors
from esenas.schema_rules import violations, with_rules
from esenas.schema_validate import normalize, type_name, validate
from esenas.spec import (
    MAX_KWARGS_BYTES,
    MAX_SPEC_BYTES,
    PATTERN_HINTS,
    SEARCHED_TOPOLOGIES,
    Job,
    JobSpec,
)
from esenas.topology import RENAMED_KINDS

#: What each pattern of the schema means, for the messages ("must be a label value ..., got 'a b'").
_HINTS: Final = {**PATTERN_HINTS, **K8S_PATTERN_HINTS}


@functools.cache
def _schema() -> Schema:
    return with_rules(object_schema(JobSpec))


def spec_schema() -> Schema:
    """The spec's openAPIV3Schema with its CEL rules (a fresh copy)."""
    return copy.deepcopy(_schema())


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON, as the API server stores it (YAML-only values,
    such as timestamps, counted as their text)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str, skipkeys=True)
    return len(text.encode("utf-8"))


def _size_errors(spec: Mapping[str, Any], path: str) -> list[FieldError]:
    errors = []
    size = json_size(spec)
    if size > MAX_SPEC_BYTES:
        errors.append(FieldError(path, f"is {size} bytes as JSON; must be at most {MAX_SPEC_BYTES} ({MAX_SPEC_BYTES // 1024} KiB), so that kubectl apply's copy of it fits Kubernetes' 256 KiB of annotations"))
    env = spec.get("environment")
    kwargs = env.get("kwargs") if isinstance(env, Mapping) else None
    if kwargs is not None:
        size = json_size(kwargs)
        if size > MAX_KWARGS_BYTES:
            errors.append(FieldError(f"{path}.environment.kwargs", f"is {size} bytes as JSON; must be at most {MAX_KWARGS_BYTES} ({MAX_KWARGS_BYTES // 1024} KiB)"))
        if isinstance(kwargs, Mapping):
            errors += [FieldError(f"{path}.environment.kwargs.{key}", why) for key, why in RESERVED_KWARGS.items() if key in kwargs]
        errors += [FieldError(f"{path}.environment.kwargs{at}", f"must be finite (JSON, and so the API server, has no NaN or "
                                                                 f"infinity), got {bad!r}") for at, bad in _non_finite(kwargs)]
    return errors


def _non_finite(value: Any, at: str = "") -> list[tuple[str, float]]:
    """(path, value) of every NaN or infinity in ``value``, a YAML tree (``.nan`` reads as one)."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [(at, value)]
    if isinstance(value, Mapping):
        return [hit for k, v in value.items() for hit in _non_finite(v, f"{at}.{k}")]
    if isinstance(value, list):
        return [hit for i, v in enumerate(value) for hit in _non_finite(v, f"{at}[{i}]")]
    return []


#: kwargs that gymnasium.make takes for itself, not the task's: set elsewhere, or never.
RESERVED_KWARGS: Final = {
    "max_episode_steps": "is set by spec.environment.maxEpisodeSteps; move it there",
    "render_mode": "must not be set: rollouts never render (the run folder's clip and esenas eval --video render the found policy)",
}


def _configured_defaults(spec: dict[str, Any]) -> None:
    """The defaults the CRD leaves out because they depend on other fields (in place)."""
    policy, controller, es = spec["policy"], spec["controller"], spec["es"]
    if "type" not in controller:
        controller["type"] = "policy_gradient" if policy["topology"] in SEARCHED_TOPOLOGIES else "none"
    if policy["template"] == "mlp":
        policy.setdefault("hiddenLayers", [41])  # the poster's H41
        for key, value in MLP_ES_DEFAULTS.items():
            if key != "perturbations" or "perturbationsPerWorker" not in es:
                es.setdefault(key, value)
    policy.setdefault("clipActions", clip_actions(policy["template"], spec["environment"]["id"]))
    es.setdefault("rewardShift", survival_bonus(spec["environment"]["id"], spec["environment"].get("kwargs", {})))
    if "topDirections" not in es and (top := top_directions(spec["environment"]["id"])) is not None:
        es["topDirections"] = top
    if "perturbationsPerWorker" in es:
        es["perturbations"] = es["perturbationsPerWorker"] * max(1, spec["workers"]["replicas"])


def _unwrap(hint: Any) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if type(None) in typing.get_args(hint) and len(args) == 1 else hint


def _build(cls: type[Any], data: Mapping[str, Any]) -> Any:
    """An instance of a spec dataclass from its checked, defaulted mapping; absent keys take the
    dataclass default."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        key = camel(f.name)
        if key not in data:
            continue
        value, hint = data[key], _unwrap(hints[f.name])
        if dataclasses.is_dataclass(hint):
            value = _build(hint, value)  # type: ignore[arg-type]
        elif typing.get_origin(hint) is tuple:
            value = tuple(dict(v) if isinstance(v, Mapping) else v for v in value)
        elif hint is float:
            value = float(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def _renamed(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    """``spec`` with a former topology name replaced (deprecated; the CRD refuses it): ``masked``
    was ``edges`` with searchSpace ``aggregate_edges`` (esenas.topology.RENAMED_KINDS)."""
    policy = spec.get("policy")
    if not isinstance(policy, Mapping) or policy.get("topology") not in RENAMED_KINDS:
        return spec
    renamed = {**policy, "topology": RENAMED_KINDS[policy["topology"]], "searchSpace": "aggregate_edges"}
    return {**spec, "policy": renamed}


def parse(spec: Any, path: str = "spec") -> JobSpec:
    """Parse a raw ``spec`` mapping into a :class:`JobSpec`, or raise :class:`SpecError` naming
    every bad field."""
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        raise SpecError([FieldError(path, f"must be an object, got {type_name(spec)}")])
    spec = _renamed(spec)
    errors = _size_errors(spec, path)
    schema = _schema()
    checked = normalize(spec, schema, path, errors)
    validate(checked, schema, path, errors, _HINTS)
    errors += quantity_errors(checked, JobSpec, errors, path)
    errors += pod_errors(checked, errors, path)
    errors += violations(checked, errors, path)
    if errors:
        raise SpecError(errors)
    _configured_defaults(checked)
    job: JobSpec = _build(JobSpec, checked)
    return job


def load(source: str | Path | Mapping[str, Any]) -> Job:
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
        raise SpecError([FieldError(where, f"must be an ESENASJob object, got {type_name(doc)}")])
    errors = document_errors(doc)
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    namespace = (meta.get("namespace") if isinstance(meta, Mapping) else None) or "default"
    raw_spec = doc.get("spec")
    try:
        spec = parse(raw_spec)
    except SpecError as exc:
        errors.extend(exc.errors)
        spec = None
    if errors or spec is None:
        raise SpecError(errors)
    return Job(name=str(name), namespace=str(namespace), spec=spec, raw_spec=dict(raw_spec or {}))
