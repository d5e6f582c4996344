"""Who may reach a job's HTTP port (9090: /metrics, /status, /result) through its NetworkPolicies.

The chart's ``jobNetworkPolicy.httpFrom`` reaches the operator as ESENAS_JOB_HTTP_FROM (JSON): a
list of NetworkPolicyPeers. Empty (the default), the port is open to every pod, as a Prometheus
anywhere in the cluster needs. Set, only those peers and the operator itself (which reads /status
and /result) reach it. gRPC (50051) is the job's workers' and relays' alone either way. A bad value
stops the operator at start, naming the variable and the field, rather than failing every job's
reconcile later (the API server would refuse each NetworkPolicy).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from esenas.schema_model import FieldError, Schema
from esenas.schema_validate import normalize, validate

from esenas_operator import names
from esenas_operator.monitoring import LABEL_KEY, LABEL_VALUE

HTTP_FROM_ENV: Final = "ESENAS_JOB_HTTP_FROM"
#: The operator pod's own labels (JSON), for the rule that lets it read its jobs' /status.
POD_LABELS_ENV: Final = "ESENAS_OPERATOR_POD_LABELS"
#: The label every namespace carries with its own name (Kubernetes 1.21 and later).
NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"

OPERATORS: Final = ("In", "NotIn", "Exists", "DoesNotExist")

_STRINGS: Final[Schema] = {"type": "array", "items": {"type": "string"}}
SELECTOR: Final[Schema] = {
    "type": "object",
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "operator"],
                "properties": {"key": {"type": "string"}, "operator": {"type": "string", "enum": list(OPERATORS)}, "values": _STRINGS},
            },
        },
    },
}
#: networking.k8s.io/v1 NetworkPolicyPeer.
PEER: Final[Schema] = {
    "type": "object",
    "properties": {
        "podSelector": SELECTOR,
        "namespaceSelector": SELECTOR,
        "ipBlock": {"type": "object", "required": ["cidr"], "properties": {"cidr": {"type": "string"}, "except": _STRINGS}},
    },
}
HTTP_FROM: Final[Schema] = {"type": "array", "items": PEER}


def _selector_problems(sel: Mapping[str, Any], at: str) -> list[FieldError]:
    out = []
    for key, value in (sel.get("matchLabels") or {}).items():
        if not LABEL_KEY.match(key):
            out.append(FieldError(f"{at}.matchLabels", f"{key!r} is not a Kubernetes label key"))
        elif not LABEL_VALUE.match(value):
            out.append(FieldError(f"{at}.matchLabels.{key}", f"{value!r} is not a Kubernetes label value"))
    for i, req in enumerate(sel.get("matchExpressions") or ()):
        where, values = f"{at}.matchExpressions[{i}]", req.get("values") or []
        if not LABEL_KEY.match(req["key"]):
            out.append(FieldError(f"{where}.key", f"{req['key']!r} is not a Kubernetes label key"))
        if req["operator"] in ("In", "NotIn") and not values:
            out.append(FieldError(f"{where}.values", f"required (at least one) with operator {req['operator']}"))
        if req["operator"] in ("Exists", "DoesNotExist") and values:
            out.append(FieldError(f"{where}.values", f"must be empty with operator {req['operator']}"))
        out += [FieldError(f"{where}.values[{j}]", f"{v!r} is not a Kubernetes label value") for j, v in enumerate(values) if not LABEL_VALUE.match(v)]
    return out


def _block_problems(block: Mapping[str, Any], at: str) -> list[FieldError]:
    try:
        net = ipaddress.ip_network(block["cidr"], strict=False)
    except ValueError:
        return [FieldError(f"{at}.cidr", f"{block['cidr']!r} is not a CIDR such as 10.0.0.0/8")]
    out = []
    for j, text in enumerate(block.get("except") or ()):
        try:
            inner = ipaddress.ip_network(text, strict=False)
        except ValueError:
            out.append(FieldError(f"{at}.except[{j}]", f"{text!r} is not a CIDR"))
            continue
        if inner.version != net.version or not inner.subnet_of(net):  # type: ignore[arg-type]
            out.append(FieldError(f"{at}.except[{j}]", f"{text} is not inside cidr {block['cidr']}"))
    return out


def peer_problems(peers: Any) -> list[FieldError]:
    """Every way ``peers`` is not a list of NetworkPolicyPeers the API server would take."""
    errors: list[FieldError] = []
    peers = normalize(peers, HTTP_FROM, "", errors)
    validate(peers, HTTP_FROM, "", errors, {})
    if errors or not isinstance(peers, list):
        return errors
    for i, peer in enumerate(peers):
        at = f"[{i}]"
        if not peer:
            errors.append(FieldError(at, "must set podSelector, namespaceSelector or ipBlock"))
        if "ipBlock" in peer and len(peer) > 1:
            errors.append(FieldError(at, "ipBlock cannot be set with podSelector or namespaceSelector"))
        for field in ("podSelector", "namespaceSelector"):
            if field in peer:
                errors += _selector_problems(peer[field], f"{at}.{field}")
        if "ipBlock" in peer:
            errors += _block_problems(peer["ipBlock"], f"{at}.ipBlock")
    return errors


@dataclass(frozen=True)
class HttpAccess:
    """The peers allowed on port 9090 (none: every pod), and the operator pod as a peer."""

    peers: tuple[Mapping[str, Any], ...] = ()
    operator: Mapping[str, Any] | None = None

    def rule(self) -> dict[str, Any]:
        """The NetworkPolicy ingress rule of the HTTP port."""
        rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": names.HTTP_PORT}]}
        if self.peers:
            rule["from"] = [*([dict(self.operator)] if self.operator else []), *(dict(p) for p in self.peers)]
        return rule

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HttpAccess:
        """Reads ESENAS_JOB_HTTP_FROM, and the operator's own namespace and labels when it is set."""
        what = f"{HTTP_FROM_ENV} (the chart's jobNetworkPolicy.httpFrom)"
        raw = env.get(HTTP_FROM_ENV, "").strip() or "[]"
        try:
            peers = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{what}: not JSON ({exc.msg}): {raw[:80]!r}") from None
        if problems := peer_problems(peers):
            raise ValueError(f"{what}: " + "; ".join(f"{e.path.lstrip('.') or 'the list'}: {e.reason}" for e in problems))
        if not peers:
            return cls()
        namespace, labels = env.get("POD_NAMESPACE", "").strip(), env.get(POD_LABELS_ENV, "").strip()
        try:
            own = json.loads(labels) if labels else None
        except json.JSONDecodeError:
            own = None
        if not namespace or not isinstance(own, dict) or not own:
            raise ValueError(f"{what} is set, but the operator's own namespace (POD_NAMESPACE) and labels ({POD_LABELS_ENV}, "
                             "a JSON object) are not: it could not read its jobs' /status through the NetworkPolicy")
        operator = {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}, "podSelector": {"matchLabels": own}}
        return cls(tuple(peers), operator)
