"""Reading objects through the user's ``kubectl``: their kubeconfig, context, namespace and auth plugins.

Why kubectl and not the ``kubernetes`` client library: the person who runs ``esenas fetch`` has
just used ``kubectl apply`` and ``kubectl get esj``, so kubectl already works for them, with every
auth plugin (exec, OIDC, cloud helpers), proxy and context setting, and its errors are the ones
they know. The library would add a large dependency to the CLI and still miss some plugins.
Every failure becomes one line that says what to do; nothing from the kubeconfig is printed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

Run = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]

#: kubectl's own request timeout, and ours around the whole call (auth plugins can be slow).
REQUEST_TIMEOUT: Final = "30s"
PROCESS_TIMEOUT: Final = 90.0


#: A line of kubectl's client log (klog), such as ``E1205 15:26:24.691233   17664 memcache.go:265] ...``.
_KLOG: Final = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ \S+:\d+\] ")


class KubectlError(Exception):
    """kubectl could not answer; the message is one line for a person."""


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=PROCESS_TIMEOUT, check=False)


def explain(stderr: str, what: str, namespace: str | None) -> str:
    """kubectl's error for reading ``what`` as one line that says what to do about it."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    plain = [line for line in lines if not _KLOG.match(line)]  # kubectl's own summary, not its client's log
    first = (plain or lines or ["kubectl failed without a message"])[0]
    where = f"namespace {namespace!r}" if namespace else "kubectl's current namespace"
    if "(Forbidden)" in first:
        return (f"no access: your kubeconfig's user may not read {what} in {where} "
                f"(esenas fetch needs get on esenasjobs and configmaps there): {first}")
    if "(Unauthorized)" in first or "must be logged in" in first:
        return f"no access: the cluster refused your credentials ({first}); log in again or check your kubeconfig"
    if "doesn't have a resource type" in first:
        return ("this cluster has no ESENASJob resource: install the esenas operator's CRD "
                "(helm install, docs/quickstart.md) or pick another --context")
    if "Unable to connect" in first or "connection to the server" in first or "dial tcp" in first:
        return f"cannot reach the cluster: {first}"
    return f"kubectl: {first}"


@dataclass
class Kubectl:
    """``kubectl get -o json`` with the user's flags; ``run`` is replaceable for tests."""

    namespace: str | None = None
    context: str | None = None
    kubeconfig: str | None = None
    binary: str = "kubectl"
    run: Run = field(default=_run)

    def _argv(self, namespace: str | None, *args: str) -> list[str]:
        argv = [self.binary, f"--request-timeout={REQUEST_TIMEOUT}"]
        if self.kubeconfig:
            argv.append(f"--kubeconfig={self.kubeconfig}")
        if self.context:
            argv.append(f"--context={self.context}")
        ns = namespace or self.namespace
        if ns:
            argv.append(f"--namespace={ns}")
        return [*argv, *args]

    def get(self, resource: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object, or None when it does not exist; raises KubectlError for anything else."""
        argv = self._argv(namespace, "get", resource, name, "--output=json")
        if self.run is _run and shutil.which(self.binary) is None:
            raise KubectlError(f"{self.binary} is not on PATH: esenas fetch reads the job through kubectl "
                               "and your kubeconfig (https://kubernetes.io/docs/tasks/tools/)")
        try:
            done = self.run(argv)
        except subprocess.TimeoutExpired:
            raise KubectlError(f"kubectl get {resource} {name} took over {PROCESS_TIMEOUT:.0f} s") from None
        if done.returncode != 0:
            if "(NotFound)" in done.stderr:
                return None
            raise KubectlError(explain(done.stderr, f"{resource} {name!r}", namespace or self.namespace))
        try:
            obj = json.loads(done.stdout)
        except ValueError:
            raise KubectlError(f"kubectl get {resource} {name} did not print JSON") from None
        if not isinstance(obj, dict):
            raise KubectlError(f"kubectl get {resource} {name} did not print an object")
        return obj
