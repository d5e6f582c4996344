"""PodSecurity admission through the real kubectl: a namespace labelled enforce=restricted refuses
a non-compliant pod with the real server's message and admits a compliant one; warn=restricted
makes kubectl print the Warning for a Deployment, which is still created."""

from __future__ import annotations

import copy
from typing import Any

from tests.fakekube.harness import FakeKube
from tests.integration.fakekube.crds import dump

SECURE_POD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "good"},
    "spec": {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "main", "image": "busybox", "securityContext": {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
    },
}
PLAIN_POD: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad"},
                             "spec": {"containers": [{"name": "main", "image": "busybox"}]}}
REFUSED: str = (
    'pods "bad" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation '
    '!= false (container "main" must set securityContext.allowPrivilegeEscalation=false), '
    'unrestricted capabilities (container "main" must set securityContext.capabilities.drop=["ALL"]), '
    'runAsNonRoot != true (pod or container "main" must set securityContext.runAsNonRoot=true), '
    'seccompProfile (pod or container "main" must set securityContext.seccompProfile.type to '
    '"RuntimeDefault" or "Localhost")')


def namespace(fakekube: FakeKube, name: str, *labels: str) -> None:
    """A namespace from a manifest (`kubectl create namespace` speaks protobuf), then labelled."""
    fakekube.kubectl("apply", "-f", "-", input=dump({"apiVersion": "v1", "kind": "Namespace",
                                                     "metadata": {"name": name}}))
    if labels:
        fakekube.kubectl("label", "namespace", name, *labels)


def test_enforce_restricted_refuses_a_plain_pod_and_admits_a_secure_one(fakekube: FakeKube) -> None:
    namespace(fakekube, "locked", "pod-security.kubernetes.io/enforce=restricted")
    bad = fakekube.kubectl("apply", "-n", "locked", "-f", "-", input=dump(PLAIN_POD), check=False)
    assert bad.returncode != 0
    assert "Error from server (Forbidden)" in bad.stderr and REFUSED in bad.stderr, bad.stderr
    missing = fakekube.kubectl("get", "pod", "bad", "-n", "locked", check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr

    good = fakekube.kubectl("apply", "-n", "locked", "-f", "-", input=dump(SECURE_POD))
    assert "pod/good created" in good.stdout and "Warning" not in good.stderr
    # The same plain pod is fine where nothing is enforced (the default is privileged).
    fakekube.kubectl("apply", "-n", "default", "-f", "-", input=dump(PLAIN_POD))


def test_warn_restricted_prints_the_warning_and_creates_the_deployment(fakekube: FakeKube) -> None:
    namespace(fakekube, "warned", "pod-security.kubernetes.io/warn=restricted",
              "pod-security.kubernetes.io/warn-version=v1.33")
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"hostNetwork": True, "containers": [copy.deepcopy(SECURE_POD["spec"]["containers"][0])],
                     "securityContext": copy.deepcopy(SECURE_POD["spec"]["securityContext"])}}},
    }
    out = fakekube.kubectl("apply", "-n", "warned", "-f", "-", input=dump(deployment))
    assert ('Warning: would violate PodSecurity "restricted:v1.33": host namespaces (hostNetwork=true)'
            in out.stderr), out.stderr
    assert "deployment.apps/web created" in out.stdout
    assert fakekube.client.get("/apis/apps/v1/namespaces/warned/deployments/web")["spec"]["replicas"] == 1
    again = fakekube.kubectl("apply", "-n", "warned", "-f", "-", input=dump(deployment))
    assert "Warning" not in again.stderr, "an unchanged template is not checked again"


def test_labelling_a_namespace_checks_labels_and_names_pods_it_would_refuse(fakekube: FakeKube) -> None:
    namespace(fakekube, "busy")
    fakekube.kubectl("apply", "-n", "busy", "-f", "-", input=dump(PLAIN_POD))
    out = fakekube.kubectl("label", "namespace", "busy", "pod-security.kubernetes.io/enforce=baseline")
    assert "Warning" not in out.stderr, "the plain pod passes baseline"
    out = fakekube.kubectl("label", "--overwrite", "namespace", "busy",
                           "pod-security.kubernetes.io/enforce=restricted")
    assert ('Warning: existing pods in namespace "busy" violate the new PodSecurity enforce level '
            '"restricted:latest"' in out.stderr), out.stderr
    assert ("Warning: bad: allowPrivilegeEscalation != false, unrestricted capabilities, "
            "runAsNonRoot != true, seccompProfile") in out.stderr
    wrong = fakekube.kubectl("label", "--overwrite", "namespace", "busy",
                             "pod-security.kubernetes.io/enforce=strict", check=False)
    assert wrong.returncode != 0
    assert ('metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be '
            "one of privileged, baseline, restricted") in wrong.stderr, wrong.stderr
