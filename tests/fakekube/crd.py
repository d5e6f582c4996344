"""CustomResourceDefinition rules: what makes a CRD acceptable, and the status the real
server's controllers give it once its names are accepted."""

from __future__ import annotations

from .errors import invalid
from .store import Obj, now


def check_crd(crd: Obj) -> None:
    """The CRD checks whose absence would let a broken CRD register (names, storage)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    causes = []
    for path, value in (("spec.group", spec.get("group")), ("spec.names.plural",
                        names.get("plural")), ("spec.names.kind", names.get("kind")),
                        ("spec.versions", spec.get("versions"))):
        if not value:
            causes.append({"reason": "FieldValueRequired", "field": path,
                           "message": "Required value"})
    expected = f'{names.get("plural")}.{spec.get("group")}'
    if not causes and crd["metadata"]["name"] != expected:
        causes.append({"reason": "FieldValueInvalid", "field": "metadata.name",
                       "message": f'Invalid value: "{crd["metadata"]["name"]}": must be '
                                  'spec.names.plural+"."+spec.group'})
    if not causes and sum(1 for v in spec["versions"] if v.get("storage")) != 1:
        causes.append({"reason": "FieldValueInvalid", "field": "spec.versions",
                       "message": "Invalid value: must have exactly one version marked as "
                                  "storage version"})
    if causes:
        raise invalid("CustomResourceDefinition", "apiextensions.k8s.io",
                      crd["metadata"]["name"], causes)


def crd_status(crd: Obj) -> Obj:
    """Status of an accepted CRD: names accepted and Established, as clients wait for."""
    names = dict(crd["spec"]["names"])
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", f'{names["kind"]}List')
    stamp = now()
    return {
        "acceptedNames": names,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": stamp},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": stamp},
        ],
        "storedVersions": [v["name"] for v in crd["spec"]["versions"] if v.get("storage")],
    }
