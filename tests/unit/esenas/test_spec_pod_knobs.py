"""The pod knobs of the spec (esenas.schema_pod, esenas.schema_affinity) are refused as the API
server refuses them in the operator's pods and claim, naming the spec's field and the reason; real
values pass; and the CRD's CEL rules (the fake API server's evaluator) and their Python twins give
the same verdict on the same knobs."""

from __future__ import annotations

import copy
import itertools
import re
from typing import Any

import pytest
from esenas.schema_pod import TOLERATION_RULES
from esenas.spec import SpecError, openapi_schema, parse_spec

from tests.unit.esenas.crd_cel import cel_causes

ENV: dict[str, Any] = {"environment": {"id": "HalfCheetah-v5"}}
NAME_PART = "its name part must be 1-63 characters: alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"
QUALIFIED = "a qualified name ([prefix/]name, such as kubernetes.io/hostname"
LABEL_VALUE = "must be a label value (empty, or alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric)"
KEYS = "keys must be qualified names ([prefix/]name, such as kubernetes.io/arch or node.kubernetes.io/instance-type)"
LONG_PREFIX = "x" * 254 + "/gpu"
NODE = "spec.workers.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
ANTI = "spec.workers.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]"


def _errors(spec: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec({**ENV, **spec})
    return [str(e) for e in info.value.errors]


def _workers(**knobs: Any) -> dict[str, Any]:
    return {"workers": knobs}


def _node_terms(*requirements: dict[str, Any], fields: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    term: dict[str, Any] = {"matchExpressions": list(requirements)}
    if fields:
        term["matchFields"] = list(fields)
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}


def _anti(term: dict[str, Any]) -> dict[str, Any]:
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "kubernetes.io/hostname", **term}]}}


BAD: list[tuple[dict[str, Any], str]] = [
    # nodeSelector: label keys and label values (ValidatePodSpecNodeSelector)
    (_workers(nodeSelector={"bad key!": "x"}), f"spec.workers.nodeSelector: {KEYS}, got 'bad key!': {NAME_PART}"),
    (_workers(nodeSelector={"a/b/c": "x"}), f"spec.workers.nodeSelector: {KEYS}, got 'a/b/c': its prefix 'a/b' must be a DNS-1123 subdomain"),
    (_workers(nodeSelector={"x" * 64: "x"}), f"spec.workers.nodeSelector: {KEYS}, got '{'x' * 64}': {NAME_PART}"),
    (_workers(nodeSelector={LONG_PREFIX: "x"}), f"spec.workers.nodeSelector: {KEYS}, got '{LONG_PREFIX}': its prefix '{'x' * 254}' must be a DNS-1123 subdomain of at most 253"),
    (_workers(nodeSelector={"disk": "not ok"}), f"spec.workers.nodeSelector.disk: {LABEL_VALUE}, got 'not ok'"),
    (_workers(nodeSelector={"disk": "-ssd"}), f"spec.workers.nodeSelector.disk: {LABEL_VALUE}, got '-ssd'"),
    (_workers(nodeSelector={"disk": "s" * 64}), "spec.workers.nodeSelector.disk: must be at most 63 characters long, got 64"),
    (_workers(nodeSelector={f"k{i}": "v" for i in range(65)}), "spec.workers.nodeSelector: must have at most 64 keys, got 65"),
    # class names: DNS-1123 subdomains
    (_workers(priorityClassName="Fast_SSD"), "spec.workers.priorityClassName: must be empty or a DNS-1123 subdomain (lower-case alphanumerics, '-' and '.', starting and ending with an alphanumeric, such as fast-ssd), got 'Fast_SSD'"),
    ({"aggregator": {"checkpoint": {"storageSize": "1Gi", "storageClassName": "Fast_SSD"}}}, "spec.aggregator.checkpoint.storageClassName: must be empty or a DNS-1123 subdomain"),
    ({"aggregator": {"checkpoint": {"storageClassName": "ssd."}}}, "spec.aggregator.checkpoint.storageClassName: must be empty or a DNS-1123 subdomain"),
    # tolerations (ValidateTolerations)
    (_workers(tolerations=[{"operator": "Sideways"}]), "spec.workers.tolerations[0].operator: must be one of Exists, Equal, ''; got 'Sideways'"),
    (_workers(tolerations=[{"key": "gpu", "operator": "Exists", "value": "yes"}]), "spec.workers.tolerations[0].value: must be empty when operator is 'Exists' (Exists matches every value of the key), got 'yes'"),
    (_workers(tolerations=[{"operator": "Equal", "value": "v"}]), "spec.workers.tolerations[0].operator: must be 'Exists' when key is empty (an empty key with Exists tolerates every taint), got 'Equal'"),
    (_workers(tolerations=[{"effect": "NoSchedule"}]), "spec.workers.tolerations[0].operator: must be 'Exists' when key is empty (an empty key with Exists tolerates every taint), got ''"),
    (_workers(tolerations=[{"key": "bad key!", "operator": "Exists"}]), f"spec.workers.tolerations[0].key: must be empty or {QUALIFIED}"),
    (_workers(tolerations=[{"key": "a/b/c", "operator": "Exists"}]), f"spec.workers.tolerations[0].key: must be empty or {QUALIFIED}"),
    (_workers(tolerations=[{"key": LONG_PREFIX, "operator": "Exists"}]), "spec.workers.tolerations[0].key: must have a prefix (before '/') of at most 253 characters"),
    (_workers(tolerations=[{"key": "gpu", "value": "not ok"}]), f"spec.workers.tolerations[0].value: {LABEL_VALUE}, got 'not ok'"),
    (_workers(tolerations=[{"key": "gpu", "value": "v" * 64}]), "spec.workers.tolerations[0].value: must be at most 63 characters long, got 64"),
    (_workers(tolerations=[{"key": "gpu", "effect": "Sometimes"}]), "spec.workers.tolerations[0].effect: must be one of NoSchedule, PreferNoSchedule, NoExecute, ''; got 'Sometimes'"),
    (_workers(tolerations=[{"key": "gpu", "effect": "NoSchedule", "tolerationSeconds": 30}]), "spec.workers.tolerations[0].effect: must be 'NoExecute' when tolerationSeconds is set (only a NoExecute taint evicts a pod), got 'NoSchedule'"),
    (_workers(tolerations=[{"key": "gpu", "operator": "Exists"}, {"key": "gpu", "tolerationSeconds": 5}]), "spec.workers.tolerations[1].effect: must be 'NoExecute' when tolerationSeconds is set"),
    # node affinity (ValidateNodeSelector, ValidatePreferredSchedulingTerms)
    (_workers(affinity=_node_terms({"key": "zone", "operator": "In"})), f"{NODE}.nodeSelectorTerms[0].matchExpressions[0].values: must have at least one value when operator is 'In'"),
    (_workers(affinity=_node_terms({"key": "zone", "operator": "NotIn", "values": []})), f"{NODE}.nodeSelectorTerms[0].matchExpressions[0].values: must have at least one value when operator is 'NotIn'"),
    (_workers(affinity=_node_terms({"key": "zone", "operator": "Exists", "values": ["a"]})), f"{NODE}.nodeSelectorTerms[0].matchExpressions[0].values: must be empty when operator is 'Exists', got ['a']"),
    (_workers(affinity=_node_terms({"key": "zone", "operator": "DoesNotExist", "values": ["a"]})), f"{NODE}.nodeSelectorTerms[0].matchExpressions[0].values: must be empty when operator is 'DoesNotExist'"),
    (_workers(affinity=_node_terms({"key": "cpus", "operator": "Gt", "values": ["4", "8"]})), f"{NODE}.nodeSelectorTerms[0].matchExpressions[0].values: must have exactly one value (an integer) when operator is 'Gt', got 2"),
    (_workers(affinity=_node_terms({"key": "cpus", "operator": "Lt", "values": ["many"]})), f"{NODE}.nodeSelectorTerms[0].matchExpressions[0].values[0]: must be an integer when operator is 'Lt' (a node label compared as a number), got 'many'"),
    (_workers(affinity=_node_terms({"key": "zone", "operator": "Near", "values": ["a"]})), f"{NODE}.nodeSelectorTerms[0].matchExpressions[0].operator: must be one of In, NotIn, Exists, DoesNotExist, Gt, Lt; got 'Near'"),
    (_workers(affinity=_node_terms({"key": "bad key!", "operator": "Exists"})), f"{NODE}.nodeSelectorTerms[0].matchExpressions[0].key: must be {QUALIFIED}"),
    (_workers(affinity=_node_terms({"key": LONG_PREFIX, "operator": "Exists"})), f"{NODE}.nodeSelectorTerms[0].matchExpressions[0].key: must be a qualified name: its prefix"),
    (_workers(affinity=_node_terms(fields=({"key": "spec.nodeName", "operator": "In", "values": ["n1"]},))), f"{NODE}.nodeSelectorTerms[0].matchFields[0].key: must be 'metadata.name', the only node field a selector can match, got 'spec.nodeName'"),
    (_workers(affinity=_node_terms(fields=({"key": "metadata.name", "operator": "Exists"},))), f"{NODE}.nodeSelectorTerms[0].matchFields[0].operator: must be 'In' or 'NotIn' for a node field selector, got 'Exists'"),
    (_workers(affinity=_node_terms(fields=({"key": "metadata.name", "operator": "In", "values": ["a", "b"]},))), f"{NODE}.nodeSelectorTerms[0].matchFields[0].values: must have exactly one value (a node's name) for a node field selector, got 2"),
    (_workers(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}), f"{NODE}.nodeSelectorTerms: must have at least one node selector term"),
    (_workers(affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 0, "preference": {}}]}}), "spec.workers.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: must be >= 1, got 0"),
    (_workers(affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 101, "preference": {}}]}}), "spec.workers.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: must be <= 100, got 101"),
    # pod (anti-)affinity (validatePodAffinityTerm, metav1's ValidateLabelSelector)
    (_workers(affinity={"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": ""}]}}), f"{ANTI}.topologyKey: must be {QUALIFIED}"),
    (_workers(affinity={"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "my zone"}]}}), f"{ANTI}.topologyKey: must be {QUALIFIED}"),
    (_workers(affinity={"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{}]}}), "spec.workers.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: required"),
    (_workers(affinity=_anti({"labelSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}})), f"{ANTI}.labelSelector.matchExpressions[0].values: must have at least one value when operator is 'In'"),
    (_workers(affinity=_anti({"labelSelector": {"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["x"]}]}})), f"{ANTI}.labelSelector.matchExpressions[0].values: must be empty when operator is 'Exists'"),
    (_workers(affinity=_anti({"labelSelector": {"matchExpressions": [{"key": "app", "operator": "Gt", "values": ["1"]}]}})), f"{ANTI}.labelSelector.matchExpressions[0].operator: must be one of In, NotIn, Exists, DoesNotExist; got 'Gt'"),
    (_workers(affinity=_anti({"labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["not ok"]}]}})), f"{ANTI}.labelSelector.matchExpressions[0].values[0]: {LABEL_VALUE}"),
    (_workers(affinity=_anti({"labelSelector": {"matchExpressions": [{"key": "a/b/c", "operator": "Exists"}]}})), f"{ANTI}.labelSelector.matchExpressions[0].key: must be {QUALIFIED}"),
    (_workers(affinity=_anti({"labelSelector": {"matchLabels": {"bad key!": "esenas"}}})), f"{ANTI}.labelSelector.matchLabels: keys must be qualified names ([prefix/]name, such as app.kubernetes.io/name), got 'bad key!': {NAME_PART}"),
    (_workers(affinity=_anti({"labelSelector": {"matchLabels": {"app": "not ok"}}})), f"{ANTI}.labelSelector.matchLabels.app: {LABEL_VALUE}"),
    (_workers(affinity=_anti({"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "NotIn"}]}})), f"{ANTI}.namespaceSelector.matchExpressions[0].values: must have at least one value when operator is 'NotIn'"),
    (_workers(affinity=_anti({"namespaces": ["Team_A"]})), f"{ANTI}.namespaces[0]: must be a namespace's name (a DNS-1123 label"),
    (_workers(affinity=_anti({"matchLabelKeys": ["bad key!"]})), f"{ANTI}.matchLabelKeys[0]: must be a label key ([prefix/]name): {NAME_PART}, got 'bad key!'"),
    (_workers(affinity={"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 0, "podAffinityTerm": {"topologyKey": "zone"}}]}}), "spec.workers.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: must be >= 1, got 0"),
    (_workers(affinity={"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "podAffinityTerm": {"topologyKey": "bad key!"}}]}}), "spec.workers.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey: must be a qualified name"),
]


@pytest.mark.parametrize(("spec", "message"), BAD, ids=[m[:90] for _, m in BAD])
def test_a_pod_knob_the_api_server_refuses_is_refused_naming_the_field_and_why(spec: dict[str, Any], message: str) -> None:
    errors = _errors(spec)
    assert len(errors) == 1 and errors[0].startswith(message), errors


def test_every_bad_knob_of_one_spec_is_reported() -> None:
    """One run names them all: a bad key does not hide a bad value, nor one bad requirement the next."""
    errors = _errors(_workers(
        nodeSelector={"bad key!": "not ok"},
        tolerations=[{"key": "gpu", "operator": "Exists", "value": "v"}, {"operator": "Equal"}],
        affinity=_node_terms({"key": "bad key!", "operator": "In"}, {"key": "zone", "operator": "Exists", "values": ["a"]}),
    ))
    assert sorted(e.split(": ", 1)[0] for e in errors) == sorted([
        "spec.workers.nodeSelector", "spec.workers.nodeSelector.bad key!",
        "spec.workers.tolerations[0].value", "spec.workers.tolerations[1].operator",
        f"{NODE}.nodeSelectorTerms[0].matchExpressions[0].key", f"{NODE}.nodeSelectorTerms[0].matchExpressions[0].values",
        f"{NODE}.nodeSelectorTerms[0].matchExpressions[1].values",
    ]), errors


GOOD_WORKERS: dict[str, Any] = {
    "nodeSelector": {"kubernetes.io/arch": "amd64", "node.kubernetes.io/instance-type": "m5.2xlarge", "disk": "", "pool_1": "A.b-c_9"},
    "tolerations": [
        {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "dedicated", "value": "esenas"},
        {"operator": "Exists"},
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 0},
    ],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [
                    {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.2xlarge", "c5.4xlarge"]},
                    {"key": "topology.kubernetes.io/zone", "operator": "NotIn", "values": ["us-east-1a"]},
                    {"key": "spot", "operator": "DoesNotExist"},
                    {"key": "example.com/cpus", "operator": "Gt", "values": ["8"]},
                    {"key": "example.com/load", "operator": "Lt", "values": ["-1"]},
                ]},
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-1.example.com"]}]},
            ]},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}},
                {"weight": 100, "preference": {}},
            ],
        },
        "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "topology.kubernetes.io/zone", "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "esenas"}},
             "namespaces": ["team-a"], "namespaceSelector": {}},
        ]},
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchExpressions": [
                    {"key": "app.kubernetes.io/component", "operator": "In", "values": ["worker", ""]},
                    {"key": "esenas.dev/job", "operator": "Exists"},
                ]}, "matchLabelKeys": ["pod-template-hash"]},
            ],
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 50, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "esenas"}}}},
            ],
        },
    },
    "priorityClassName": "system-cluster-critical",
}


def test_real_world_pod_knobs_are_accepted_and_kept_as_given() -> None:
    spec = {**ENV, "workers": GOOD_WORKERS, "aggregator": {"checkpoint": {"storageSize": "1Gi", "storageClassName": "fast-ssd.example.com"}}}
    parsed = parse_spec(copy.deepcopy(spec))
    w = parsed.workers
    assert (w.node_selector, list(w.tolerations), w.affinity, w.priority_class_name) == (
        GOOD_WORKERS["nodeSelector"], GOOD_WORKERS["tolerations"], GOOD_WORKERS["affinity"], "system-cluster-critical"
    )
    assert parsed.aggregator.checkpoint.storage_class_name == "fast-ssd.example.com"
    assert _cel_errors(spec) == []


@pytest.mark.parametrize("name", ["", "standard", "gp3", "fast-ssd.example.com"])
def test_an_empty_or_dns_subdomain_class_name_is_accepted(name: str) -> None:
    """An empty storageClassName asks for no dynamic provisioning; the API server takes it."""
    spec = parse_spec({**ENV, "workers": {"priorityClassName": name}, "aggregator": {"checkpoint": {"storageClassName": name}}})
    assert (spec.workers.priority_class_name, spec.aggregator.checkpoint.storage_class_name) == (name, name)


# --------------------------------------------------------------------------- CEL and Python agree


def _cel_errors(spec: dict[str, Any]) -> list[str]:
    """The fields the CRD's CEL rules refuse in ``spec``, after the API server's defaulting."""
    return [c["field"] for c in cel_causes(spec)]


def _parser_fields(spec: dict[str, Any]) -> list[str]:
    try:
        parse_spec(spec)
    except SpecError as exc:
        return [e.path for e in exc.errors]
    return []


def test_the_crds_toleration_rules_and_the_parsers_agree_on_every_combination() -> None:
    keys, operators, values = ["", "gpu", "example.com/gpu", LONG_PREFIX], [None, "", "Equal", "Exists"], [None, "", "v1"]
    effects, seconds = [None, "", "NoSchedule", "NoExecute"], [None, 30]
    refused = 0
    for key, op, value, effect, secs in itertools.product(keys, operators, values, effects, seconds):
        fields = {"key": key, "operator": op, "value": value, "effect": effect, "tolerationSeconds": secs}
        toleration = {k: v for k, v in fields.items() if v is not None}
        spec = {**ENV, "workers": {"tolerations": [{"key": "ok", "operator": "Exists"}, toleration]}}
        cel = _cel_errors(spec)
        assert sorted(cel) == sorted(_parser_fields(spec)), toleration
        refused += bool(cel)
    assert 0 < refused < len(keys) * len(operators) * len(values) * len(effects) * len(seconds)


@pytest.mark.parametrize(
    ("key", "ok"),
    [("kubernetes.io/arch", True), ("node.kubernetes.io/instance-type", True), ("disk", True), ("a.b-c_d", True), ("x" * 63, True),
     ("x" * 253 + "/k", True), ("bad key!", False), ("a/b/c", False), ("/disk", False), ("Example.com/disk", False), ("disk/", False),
     ("x" * 64, False), (LONG_PREFIX, False), ("-disk", False), ("", False)],
)
def test_the_crds_node_selector_key_rule_and_the_parsers_agree(key: str, ok: bool) -> None:
    spec = {**ENV, "workers": {"nodeSelector": {"disk": "ssd", key: "v"}}}
    assert _cel_errors(spec) == ([] if ok else ["spec.workers.nodeSelector"])
    assert _parser_fields(spec) == ([] if ok else ["spec.workers.nodeSelector"])


def test_the_pod_knobs_cel_rules_read_only_bounded_values() -> None:
    """The API server refuses a CRD whose rules it estimates too costly: a string a rule reads
    without maxLength counts as 3 MiB, a list or map without a bound as all a request can hold.
    Every field the pod knobs' rules read is bounded, and so is the list or map they run over."""
    workers = openapi_schema()["properties"]["workers"]["properties"]
    tolerations, selector = workers["tolerations"], workers["nodeSelector"]
    assert tolerations["maxItems"] == 64 and selector["maxProperties"] == 64
    item = tolerations["items"]
    rules = [r["rule"] for r in item["x-kubernetes-validations"]]
    assert len(rules) == len(TOLERATION_RULES)
    read = {name for rule in rules for name in re.findall(r"self\.(\w+)", rule)}
    assert read == {"key", "operator", "value", "effect", "tolerationSeconds"}
    for name in read:
        prop = item["properties"][name]
        assert prop.get("maxLength") or prop.get("enum") or prop["type"] == "integer", name
    assert [r["rule"].startswith("self.all(k, ") for r in selector["x-kubernetes-validations"]] == [True]
