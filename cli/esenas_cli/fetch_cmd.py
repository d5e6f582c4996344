"""``esenas fetch JOB``: a cluster job's result, as the folder ``esenas run`` writes.

The operator copies the result into the job's ConfigMaps before it stops the fleet
(docs/results.md); this reads them with the user's kubectl, checks the manifest's digests, and
writes summary.json, policy.json and history.json, then draws reward_curve.png and topology.png
with the code ``esenas run`` uses (esenas_cli.results_dir), so ``esenas eval`` replays it.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
from pathlib import Path
from typing import Any, Final

from esenas.result_bundle import CHUNK_KEY, DIGEST_KEY, MANIFEST_KEY, ResultError, unpack
from esenas.run_summary import HISTORY_FILE, POLICY_FILE, SUMMARY_FILE

from esenas_cli.args import non_negative_int
from esenas_cli.clip import add_clip
from esenas_cli.fresh_eval import FRESH_EPISODES, add_fresh_eval
from esenas_cli.kubectl import Kubectl, KubectlError
from esenas_cli.results_dir import best_text, default_dir, write_folder

JOBS: Final = "esenasjobs.esenas.dev"
#: Exit code when the job has not finished yet (scripts can wait and retry).
EXIT_NOT_FINISHED: Final = 3


class FetchError(Exception):
    """Why there is no folder; one line. ``code`` is the exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def register(sub: Any) -> None:
    p = sub.add_parser("fetch", help="write a cluster job's result as the folder esenas run writes",
                       description="Read an ESENASJob's stored result with your kubectl and kubeconfig, and write "
                       "summary.json, policy.json, history.json, reward_curve.png and topology.png.")
    p.add_argument("job", metavar="JOB", help="the ESENASJob's name")
    p.add_argument("-n", "--namespace", help="its namespace (default: kubectl's current namespace)")
    p.add_argument("-o", "--output", type=Path, help="folder to write (default: runs/JOB-YYYYmmdd-HHMMSS)")
    p.add_argument("--context", help="kubeconfig context to use (default: the current one)")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: kubectl's, i.e. $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--partial", action="store_true",
                   help="take a Failed job's best result so far, which the operator kept when it failed")
    p.add_argument("--no-video", action="store_true",
                   help="skip the clip that esenas run also adds (video/episode.mp4, rendered here from policy.json)")
    p.add_argument("--fresh-episodes", type=non_negative_int, default=FRESH_EPISODES, metavar="N",
                   help=f"replay the policy here on N new episodes, summary.json's freshEval as esenas run "
                   f"adds it (default: {FRESH_EPISODES}; 0 skips it)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    kubectl = Kubectl(namespace=args.namespace, context=args.context, kubeconfig=args.kubeconfig)
    out: Path = args.output or default_dir(args.job)
    try:
        info = fetch(kubectl, args.job, out, partial=args.partial)
    except (FetchError, KubectlError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code if isinstance(exc, FetchError) else 1
    add_fresh_eval(out, args.fresh_episodes)
    add_clip(out, enabled=not args.no_video, why_not="--no-video")
    best = info["bestReward"]
    print(f"{args.job}: {info['stopReason'] or 'stopped'}; best reward {best_text(best)} "
          f"after {info['iterations']} iterations, {info['trainableParams']} trainable parameters")
    print(f"results: {out}")
    return 0


def fetch(kubectl: Kubectl, name: str, out: Path, *, partial: bool = False) -> dict[str, Any]:
    """Write the job's result folder into ``out``; returns its summary. Raises FetchError or KubectlError."""
    if (out / SUMMARY_FILE).exists():
        raise FetchError(f"{out} already holds a result; pick another --output", code=2)
    job = kubectl.get(JOBS, name)
    if job is None:
        where = f"namespace {kubectl.namespace!r}" if kubectl.namespace else "kubectl's current namespace"
        raise FetchError(f"no ESENASJob {name!r} in {where} (kubectl get esj -A lists them all)")
    namespace = str(job["metadata"]["namespace"])
    status = job.get("status") or {}
    stored = status.get("result") or {}
    configmap = _result_configmap(name, namespace, status, stored, partial)
    manifest_cm = kubectl.get("configmap", configmap, namespace)
    if manifest_cm is None:
        raise FetchError(f"{namespace}/{name} is {status.get('phase')}, but its result ConfigMap {configmap!r} "
                         "is gone (deleted by hand?); the result cannot be recovered")
    files = read_result(kubectl, manifest_cm, namespace)
    info, policy, history = _documents(files, configmap)
    write_folder(out, policy, info, history, str(info.get("task") or ""))
    if status.get("phase") == "Failed":
        print(f"warning: {name} Failed ({status.get('reason')}); this is its best result before it stopped",
              file=sys.stderr)
    return info


def _result_configmap(name: str, namespace: str, status: dict[str, Any], stored: dict[str, Any], partial: bool) -> str:
    """The manifest ConfigMap to read, or FetchError saying why there is none (yet)."""
    phase = status.get("phase") or "Pending"
    job = f"{namespace}/{name}"
    if phase == "Failed":
        why = f"{status.get('reason') or 'Failed'}: {status.get('message') or 'no message'}"
        if not stored.get("configMap"):
            raise FetchError(f"{job} Failed ({why}); no partial result was kept"
                             + (f" ({stored['message']})" if stored.get("message") else
                                " (its aggregator was not reachable when it failed)"))
        if not partial:
            raise FetchError(f"{job} Failed ({why}); its best result before it stopped is stored: "
                             "add --partial to fetch it")
        return str(stored["configMap"])
    if phase != "Succeeded":
        progress = ""
        if "iteration" in status:
            progress = f", iteration {status['iteration']}, best reward {status.get('bestReward', 'none yet')}"
        raise FetchError(f"{job} is {phase}{progress}: its result is stored when it finishes; wait with "
                         f"kubectl wait --for=jsonpath='{{.status.phase}}'=Succeeded esj/{name} -n {namespace}",
                         code=EXIT_NOT_FINISHED)
    if stored and not stored.get("configMap"):
        raise FetchError(f"{job} Succeeded, but its result was not stored: {stored.get('message') or 'no reason given'}")
    # An operator older than status.result (or a CRD that prunes it) still uses this name.
    return str(stored.get("configMap") or f"{name}-result")


def read_result(kubectl: Kubectl, manifest_cm: dict[str, Any], namespace: str) -> dict[str, str]:
    """The result's files from its manifest ConfigMap and chunk ConfigMaps, digests checked."""
    name = manifest_cm["metadata"]["name"]
    text = (manifest_cm.get("data") or {}).get(MANIFEST_KEY)
    if text is None:
        raise FetchError(f"ConfigMap {name!r} holds no {MANIFEST_KEY}: it was written by an operator older than "
                         "this esenas (kubectl get configmap -o yaml shows it)")
    try:
        manifest = json.loads(text)
    except ValueError:
        raise FetchError(f"ConfigMap {name!r}: {MANIFEST_KEY} is not JSON") from None
    chunks: list[tuple[bytes, str] | None] = []
    for chunk_name in manifest.get("configMaps") or []:
        cm = kubectl.get("configmap", str(chunk_name), namespace)
        if cm is None:
            chunks.append(None)
            continue
        try:
            data = base64.b64decode((cm.get("binaryData") or {}).get(CHUNK_KEY, ""), validate=True)
        except (binascii.Error, ValueError):
            raise FetchError(f"ConfigMap {chunk_name!r}: its chunk is not base64") from None
        chunks.append((data, str((cm.get("data") or {}).get(DIGEST_KEY, ""))))
    try:
        return unpack(manifest, chunks)
    except ResultError as exc:
        raise FetchError(f"the result in {namespace}/{name} is damaged: {exc}") from None


def _documents(files: dict[str, str], configmap: str) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    try:
        info, policy, history = (json.loads(files[n]) for n in (SUMMARY_FILE, POLICY_FILE, HISTORY_FILE))
    except KeyError as exc:
        raise FetchError(f"the result in {configmap!r} has no {exc.args[0]}") from None
    except ValueError as exc:
        raise FetchError(f"the result in {configmap!r} holds a document that is not JSON: {exc}") from None
    if not isinstance(info, dict) or not isinstance(policy, dict) or not isinstance(history, list):
        raise FetchError(f"the result in {configmap!r} is not a summary, a policy and a history")
    return info, policy, history
