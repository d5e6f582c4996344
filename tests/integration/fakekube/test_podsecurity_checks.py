"""The Pod Security Standards checks, in-process: each baseline and restricted rule fires on the
field it guards, in the real plugin's words, and stays quiet on a compliant or allowed value;
plus the admission rules (namespace labels, pod updates, pod templates) without HTTP."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.fakekube.errors import ApiError
from tests.fakekube.podsecurity import check_pod
from tests.fakekube.psadmission import admit, admit_namespace, label_errors, policies

Obj = dict[str, Any]
RESTRICTED_LABELS = {"pod-security.kubernetes.io/enforce": "restricted"}


def compliant() -> Obj:
    """A pod spec that passes restricted: the settings the operator writes."""
    return {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "worker", "image": "w", "securityContext": {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
        "volumes": [{"name": "job", "configMap": {"name": "j"}}, {"name": "tmp", "emptyDir": {}},
                    {"name": "ck", "persistentVolumeClaim": {"claimName": "c"}}],
    }


def container(spec: Obj) -> Obj:
    c: Obj = spec["containers"][0]
    return c


def edit(change: Callable[[Obj], object]) -> Obj:
    spec = compliant()
    change(spec)
    return spec


def strs(spec: Obj, level: str, meta: Obj | None = None) -> list[str]:
    return [str(v) for v in check_pod(spec, level, meta)]


def test_compliant_pod_passes_every_level() -> None:
    for level in ("privileged", "baseline", "restricted"):
        assert strs(compliant(), level) == []


# (why, change, level, the exact violation)
FIRES: list[tuple[str, Callable[[Obj], object], str, str]] = [
    ("host network", lambda s: s.update(hostNetwork=True, hostPID=True), "baseline",
     "host namespaces (hostNetwork=true, hostPID=true)"),
    ("privileged", lambda s: container(s)["securityContext"].update(privileged=True), "baseline",
     'privileged (container "worker" must not set securityContext.privileged=true)'),
    ("hostPath", lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "baseline",
     'hostPath volumes (volume "h")'),
    ("hostPort", lambda s: container(s).update(ports=[{"containerPort": 80, "hostPort": 8080}]),
     "baseline", 'hostPort (container "worker" uses hostPort 8080)'),
    ("added capability", lambda s: container(s)["securityContext"]["capabilities"].update(
        add=["SYS_ADMIN"]), "baseline", 'non-default capabilities (container "worker" must not '
     'include "SYS_ADMIN" in securityContext.capabilities.add)'),
    ("procMount", lambda s: container(s)["securityContext"].update(procMount="Unmasked"),
     "baseline", 'procMount (container "worker" must not set securityContext.procMount to '
     '"Unmasked")'),
    ("seccomp unconfined", lambda s: s["securityContext"].update(
        seccompProfile={"type": "Unconfined"}), "baseline",
     'seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")'),
    ("sysctl", lambda s: s["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
     "baseline", "forbidden sysctls (kernel.msgmax)"),
    ("selinux", lambda s: s["securityContext"].update(seLinuxOptions={"type": "spc_t", "user": "u"}),
     "baseline", 'seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: type "spc_t"; '
     "user may not be set)"),
    ("hostProcess", lambda s: container(s)["securityContext"].update(
        windowsOptions={"hostProcess": True}), "baseline",
     'hostProcess (container "worker" must not set securityContext.windowsOptions.hostProcess=true)'),
    ("apparmor", lambda s: s["securityContext"].update(appArmorProfile={"type": "Unconfined"}),
     "baseline", 'forbidden AppArmor profile (pod must not set securityContext.appArmorProfile.type '
     'to "Unconfined")'),
    ("escalation unset", lambda s: container(s)["securityContext"].pop("allowPrivilegeEscalation"),
     "restricted", 'allowPrivilegeEscalation != false (container "worker" must set '
     "securityContext.allowPrivilegeEscalation=false)"),
    ("no drop ALL", lambda s: container(s)["securityContext"].pop("capabilities"), "restricted",
     'unrestricted capabilities (container "worker" must set securityContext.capabilities.drop=["ALL"])'),
    ("adds a capability", lambda s: container(s)["securityContext"]["capabilities"].update(
        add=["CHOWN"]), "restricted", 'unrestricted capabilities (container "worker" must not '
     'include "CHOWN" in securityContext.capabilities.add)'),
    ("restricted volume", lambda s: s["volumes"].append({"name": "n", "nfs": {"server": "x"}}),
     "restricted", 'restricted volume types (volume "n" uses restricted volume type "nfs")'),
    ("runAsNonRoot unset", lambda s: s["securityContext"].pop("runAsNonRoot"), "restricted",
     'runAsNonRoot != true (pod or container "worker" must set securityContext.runAsNonRoot=true)'),
    ("runAsNonRoot false", lambda s: container(s)["securityContext"].update(runAsNonRoot=False),
     "restricted", 'runAsNonRoot != true (container "worker" must not set '
     "securityContext.runAsNonRoot=false)"),
    ("root user", lambda s: container(s)["securityContext"].update(runAsUser=0), "restricted",
     'runAsUser=0 (container "worker" must not set runAsUser=0)'),
    ("no seccomp", lambda s: s["securityContext"].pop("seccompProfile"), "restricted",
     'seccompProfile (pod or container "worker" must set securityContext.seccompProfile.type to '
     '"RuntimeDefault" or "Localhost")'),
]


@pytest.mark.parametrize(("change", "level", "expected"), [f[1:] for f in FIRES],
                         ids=[f[0] for f in FIRES])
def test_each_rule_fires_with_the_plugins_words(change: Callable[[Obj], object], level: str,
                                                expected: str) -> None:
    spec = edit(change)
    assert strs(spec, level) == [expected]
    if level == "baseline":  # restricted includes baseline (or a stricter rule replacing it)
        assert strs(spec, "restricted"), "a baseline violation also violates restricted"
    else:
        assert strs(spec, "baseline") == [], "a restricted-only rule stays quiet at baseline"


QUIET: list[tuple[str, Callable[[Obj], object]]] = [
    ("hostPort 0", lambda s: container(s).update(ports=[{"containerPort": 80, "hostPort": 0}])),
    ("NET_BIND_SERVICE", lambda s: container(s)["securityContext"]["capabilities"].update(
        add=["NET_BIND_SERVICE"])),
    ("Localhost seccomp", lambda s: s["securityContext"].update(
        seccompProfile={"type": "Localhost", "localhostProfile": "p.json"})),
    ("container-level seccomp", lambda s: (s["securityContext"].pop("seccompProfile"),
                                           container(s)["securityContext"].update(
                                               seccompProfile={"type": "RuntimeDefault"}))),
    ("container-level runAsNonRoot", lambda s: (s["securityContext"].pop("runAsNonRoot"),
                                                container(s)["securityContext"].update(runAsNonRoot=True))),
    ("safe sysctl", lambda s: s["securityContext"].update(
        sysctls=[{"name": "net.ipv4.ip_local_port_range", "value": "1024 65535"}])),
    ("container_t", lambda s: s["securityContext"].update(seLinuxOptions={"type": "container_t",
                                                                          "level": "s0:c1"})),
    ("procMount Default", lambda s: container(s)["securityContext"].update(procMount="Default")),
    ("allowed volumes", lambda s: s["volumes"].extend([
        {"name": "s", "secret": {"secretName": "x"}}, {"name": "d", "downwardAPI": {"items": []}},
        {"name": "p", "projected": {"sources": []}}, {"name": "e", "ephemeral": {}},
        {"name": "c", "csi": {"driver": "d"}}])),
    ("apparmor RuntimeDefault", lambda s: s["securityContext"].update(
        appArmorProfile={"type": "RuntimeDefault"})),
    ("non-zero uid", lambda s: container(s)["securityContext"].update(runAsUser=1000)),
]


@pytest.mark.parametrize("change", [q[1] for q in QUIET], ids=[q[0] for q in QUIET])
def test_allowed_values_stay_quiet(change: Callable[[Obj], object]) -> None:
    assert strs(edit(change), "restricted") == []


def test_plural_offenders_and_container_kinds_in_plugin_order() -> None:
    spec = compliant()
    spec["initContainers"] = [{"name": "init", "image": "i"}]
    spec["containers"].append({"name": "side", "image": "s", "securityContext": {"privileged": True}})
    found = strs(spec, "restricted")
    assert [v.split(" (")[0] for v in found] == [
        "privileged", "allowPrivilegeEscalation != false", "unrestricted capabilities"]
    assert found[1] == ('allowPrivilegeEscalation != false (containers "init", "side" must set '
                        "securityContext.allowPrivilegeEscalation=false)")


def test_windows_pods_skip_linux_only_restricted_checks() -> None:
    spec = edit(lambda s: (container(s).pop("securityContext"), s["securityContext"].pop("seccompProfile")))
    assert {v.reason for v in check_pod(spec, "restricted")} == {
        "allowPrivilegeEscalation != false", "unrestricted capabilities", "seccompProfile"}
    spec["os"] = {"name": "windows"}
    assert check_pod(spec, "restricted") == []


def test_apparmor_annotation_and_unknown_level() -> None:
    meta = {"annotations": {"container.apparmor.security.beta.kubernetes.io/worker": "unconfined"}}
    assert [v.reason for v in check_pod(compliant(), "baseline", meta)] == ["forbidden AppArmor profile"]
    ok = {"annotations": {"container.apparmor.security.beta.kubernetes.io/worker": "runtime/default"}}
    assert check_pod(compliant(), "baseline", ok) == []
    with pytest.raises(ValueError, match='got "strict"'):
        check_pod(compliant(), "strict")


def test_namespace_labels_policies_and_errors() -> None:
    assert {m: str(p) for m, p in policies({}).items()} == {
        "enforce": "privileged:latest", "audit": "privileged:latest", "warn": "privileged:latest"}
    labels = {"pod-security.kubernetes.io/enforce": "baseline",
              "pod-security.kubernetes.io/enforce-version": "v1.30",
              "pod-security.kubernetes.io/warn": "restricted"}
    assert str(policies(labels)["enforce"]) == "baseline:v1.30"
    assert str(policies(labels)["warn"]) == "restricted:latest"
    bad = {"pod-security.kubernetes.io/enforce": "strict",
           "pod-security.kubernetes.io/warn-version": "1.30"}
    assert [c["message"] for c in label_errors(bad)] == [
        'Invalid value: "strict": must be one of privileged, baseline, restricted',
        'Invalid value: "1.30": must be "latest" or "v1.x"']
    assert str(policies(bad)["enforce"]) == "restricted:latest", "malformed means strictest"


def pod(name: str, spec: Obj) -> Obj:
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": spec}


def test_admit_enforces_pods_and_lets_insignificant_updates_through() -> None:
    bad = edit(lambda s: s["securityContext"].pop("runAsNonRoot"))
    with pytest.raises(ApiError) as err:
        admit(("", "pods"), pod("p", bad), None, RESTRICTED_LABELS)
    assert err.value.code == 403 and err.value.message.startswith(
        'pods "p" is forbidden: violates PodSecurity "restricted:latest": runAsNonRoot != true (')
    assert admit(("", "pods"), pod("p", compliant()), None, RESTRICTED_LABELS) == []
    # A pod admitted before the label: label and toleration changes pass, an image change does not.
    relabelled = pod("p", copy.deepcopy(bad))
    relabelled["metadata"]["labels"] = {"a": "b"}
    relabelled["spec"]["tolerations"] = [{"operator": "Exists"}]
    assert admit(("", "pods"), relabelled, pod("p", bad), RESTRICTED_LABELS) == []
    reimaged = pod("p", copy.deepcopy(bad))
    reimaged["spec"]["containers"][0]["image"] = "w2"
    with pytest.raises(ApiError):
        admit(("", "pods"), reimaged, pod("p", bad), RESTRICTED_LABELS)


def test_admit_warns_for_templates_but_never_refuses_them() -> None:
    bad = edit(lambda s: s.update(hostNetwork=True))
    cron = {"metadata": {"name": "c"}, "spec": {"jobTemplate": {"spec": {"template": {"spec": bad}}}}}
    labels = {**RESTRICTED_LABELS, "pod-security.kubernetes.io/warn": "baseline"}
    assert admit(("batch", "cronjobs"), cron, None, labels) == [
        'would violate PodSecurity "baseline:latest": host namespaces (hostNetwork=true)']
    assert admit(("batch", "cronjobs"), cron, cron, labels) == [], "unchanged template: no warning"
    assert admit(("", "configmaps"), {"metadata": {"name": "x"}}, None, labels) == []


def test_relabelling_a_namespace_names_the_pods_it_would_refuse() -> None:
    old = {"metadata": {"name": "ns"}}
    new = {"metadata": {"name": "ns", "labels": RESTRICTED_LABELS}}
    bad = edit(lambda s: s.update(hostIPC=True))
    pods = [pod("a", bad), pod("b", bad), pod("ok", compliant())]
    assert admit_namespace(new, old, pods) == [
        'existing pods in namespace "ns" violate the new PodSecurity enforce level "restricted:latest"',
        "a (and 1 other pod): host namespaces"]
    assert admit_namespace(new, new, pods) == [], "an unchanged level warns about nothing"
    with pytest.raises(ApiError) as err:
        admit_namespace({"metadata": {"name": "ns", "labels": {
            "pod-security.kubernetes.io/enforce": "nope"}}}, old, [])
    assert err.value.code == 422
