"""The rest of an ESENASJob document around its spec: apiVersion, kind and metadata, checked as
`kubectl apply` would have the API server check them.

kubectl's field validation is Strict by default, so an unknown key at the top level or in
metadata is refused there, and `esenas run` refuses it too rather than ignore it silently. A
document may carry ``status`` (``kubectl get -o yaml`` writes one): the API server ignores it on
apply, as the CRD has a status subresource, and so does `esenas run`. Server-set metadata
(uid, resourceVersion, managedFields, ...) is accepted and ignored, for the same reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from esenas.schema_k8s import is_dns1123_label, is_label_value, qualified_name_problem
from esenas.schema_model import FieldError
from esenas.schema_validate import type_name
from esenas.spec import API_VERSION, KIND

TOP_LEVEL: Final = ("apiVersion", "kind", "metadata", "spec", "status")
#: The fields of a core/v1 ObjectMeta, by the type of their value ("any": set by the server, not checked).
METADATA: Final = {
    "name": "string", "generateName": "string", "namespace": "string", "labels": "map", "annotations": "map",
    "finalizers": "list", "ownerReferences": "list", "managedFields": "list", "generation": "integer",
    "deletionGracePeriodSeconds": "integer", "uid": "string", "resourceVersion": "string", "selfLink": "string",
    "creationTimestamp": "any", "deletionTimestamp": "any",
}
_WHAT: Final = {"string": "a string", "integer": "an integer", "map": "an object", "list": "a list"}
#: The most a job's name may have: the operator derives longer child names from it.
MAX_NAME: Final = 52
#: Kubernetes' bound on all of an object's annotations together (keys and values).
MAX_ANNOTATIONS_BYTES: Final = 256 * 1024


def _keys(value: Mapping[Any, Any], known: tuple[str, ...] | Mapping[str, str], at: str, what: str) -> list[FieldError]:
    return [FieldError(f"{at}{key}", f"unknown field; {what}") for key in value if key not in known]


def _typed(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "map":
        return isinstance(value, Mapping)
    return kind == "any" or isinstance(value, list)


def _map_errors(key: str, value: Mapping[Any, Any]) -> list[FieldError]:
    """Labels and annotations: string keys that are qualified names, string values."""
    errors = []
    at = f"metadata.{key}"
    for k, v in value.items():
        if not isinstance(k, str):
            errors.append(FieldError(f"{at}.{k}", f"keys must be strings, got {type_name(k)}"))
        elif (problem := qualified_name_problem(k.lower() if key == "annotations" else k)) is not None:
            errors.append(FieldError(f"{at}.{k}", f"is not a valid key ([prefix/]name): {problem}"))
        elif not isinstance(v, str):
            errors.append(FieldError(f"{at}.{k}", f"must be a string (quote it), got {type_name(v)} {v!r}"))
        elif key == "labels" and not is_label_value(v):
            errors.append(FieldError(f"{at}.{k}", f"must be a label value: at most 63 characters, alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric, got {v!r}"))
    if key == "annotations":
        size = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in value.items())
        if size > MAX_ANNOTATIONS_BYTES:
            errors.append(FieldError(at, f"is {size} bytes; Kubernetes allows at most {MAX_ANNOTATIONS_BYTES} (256 KiB)"))
    return errors


def metadata_errors(meta: Any) -> list[FieldError]:
    """What the API server would refuse in a job's ``metadata``, and a name the operator cannot use."""
    errors = []
    if meta is not None and not isinstance(meta, Mapping):
        errors.append(FieldError("metadata", f"must be an object, got {type_name(meta)}"))
    if not isinstance(meta, Mapping):
        meta = {}  # and the name is missing, below
    errors += _keys(meta, METADATA, "metadata.", "an ObjectMeta has " + ", ".join(list(METADATA)[:5]) + " and the fields the server sets")
    for key, kind in METADATA.items():
        value = meta.get(key)
        if value is None or key == "name":
            continue
        if not _typed(value, kind):
            errors.append(FieldError(f"metadata.{key}", f"must be {_WHAT[kind]}, got {type_name(value)} {value!r}"))
        elif kind == "map":
            errors += _map_errors(key, value)
    name = meta.get("name")
    if not isinstance(name, str) or not is_dns1123_label(name, MAX_NAME):
        errors.append(FieldError("metadata.name", f"must be a DNS-1123 label of at most {MAX_NAME} characters, got {name!r}"))
    namespace = meta.get("namespace")
    if isinstance(namespace, str) and namespace and not is_dns1123_label(namespace):  # "": kubectl's current one
        errors.append(FieldError("metadata.namespace", f"must be a DNS-1123 label (at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit), got {namespace!r}"))
    return errors


def document_errors(doc: Mapping[Any, Any]) -> list[FieldError]:
    """Everything wrong with an ESENASJob document outside its spec, one error per field."""
    errors = []
    if doc.get("apiVersion") != API_VERSION:
        errors.append(FieldError("apiVersion", f"must be {API_VERSION!r}, got {doc.get('apiVersion')!r}"))
    if doc.get("kind") != KIND:
        errors.append(FieldError("kind", f"must be {KIND!r}, got {doc.get('kind')!r}"))
    errors += _keys(doc, TOP_LEVEL, "", f"an {KIND} has only {', '.join(TOP_LEVEL[:-1])} and {TOP_LEVEL[-1]}")
    return errors + metadata_errors(doc.get("metadata"))
