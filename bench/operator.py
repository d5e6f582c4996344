#!/usr/bin/env python3
"""Operator benchmark: API cost per job against replicas, and time from apply to all children.

Runs the real operator process against the project's fake API server (tests/fakekube) and reads
its request counters. Baselines, measured in the same run:
  - API cost: the number of child objects (the fewest writes any operator could make);
  - time: creating the same children directly with plain POSTs from one client.
Prints progress, then ONE JSON line.  Usage: .venv/bin/python bench/operator.py [--jobs 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the fake API server lives in the test tree

import yaml  # noqa: E402
from esenas.spec import load_job  # noqa: E402
from esenas_operator import builders  # noqa: E402
from esenas_operator.settings import Settings  # noqa: E402

from tests.fakekube.harness import FakeKube  # noqa: E402
from tests.integration.operator.opharness import (  # noqa: E402
    CRD_FILE,
    JOBS,
    OperatorProcess,
    StandInAggregator,
    env_without_proxy,
    job_doc,
)

CHILD_RESOURCES = ("configmaps", "secrets", "services", "apps/deployments", "networking.k8s.io/networkpolicies")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def children_count(stats: dict[str, Any]) -> int:
    objects = stats["objects"]
    return sum(int(objects.get(r, 0)) for r in CHILD_RESOURCES)


def status_writes(stats: dict[str, Any]) -> int:
    return sum(n for res, n in stats["writes"].get("patch", {}).items() if res.endswith("esenasjobs/status"))


def without_own(stats: dict[str, Any], requests: int, writes: int) -> tuple[int, int]:
    """Totals minus the benchmark's own requests and writes (its POSTs of the jobs)."""
    return stats["totals"]["requests"] - requests, stats["totals"]["writes"] - writes


class Rig:
    """A fresh fake API server with the CRD, a stand-in aggregator and the operator."""

    def __init__(self, workdir: Path, interval: float) -> None:
        workdir.mkdir(parents=True)
        self.kube = FakeKube(workdir)
        self.kube.kubectl("apply", "-f", str(CRD_FILE))
        self.kube.wait_for(lambda: "esenasjobs" in self.kube.kubectl("api-resources", "--api-group=esenas.dev").stdout)
        self.standin = StandInAggregator()
        env = {**env_without_proxy(), "KUBECONFIG": str(self.kube.kubeconfig)}
        self.operator = OperatorProcess(workdir, env, self.standin.url_template, interval=interval)
        self.operator.start()
        time.sleep(1.0)  # let the watches settle before counting

    def wait_children(self, expected: int, writes_expected: int, timeout: float = 300) -> float:
        """Poll the stats endpoint (not counted) until all children and statuses exist."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            st = self.kube.client.stats()
            if children_count(st) >= expected and status_writes(st) >= writes_expected:
                return time.monotonic() - start
            time.sleep(0.02)
        raise RuntimeError(f"children not all there after {timeout} s: {children_count(self.kube.client.stats())}/{expected}")

    def close(self) -> None:
        self.operator.stop()
        self.standin.close()
        self.kube.stop()


def cost_per_job(workdir: Path, replicas: int, interval: float) -> dict[str, Any]:
    """Requests and writes the operator spends on one job: to create it, per status tick, to rescale."""
    rig = Rig(workdir, interval)
    try:
        doc = job_doc("bench", replicas=replicas)
        body = {**doc, "metadata": {**doc["metadata"], "uid": "x"}}
        expected = len(builders.build_children(body, load_job(body), Settings(), service_monitor=False)) + 1
        shards = len(builders.shard_sizes(replicas, 1000))
        rig.kube.client.reset_stats()
        rig.kube.client.create(JOBS.format(ns="default"), doc)
        rig.wait_children(expected, 1)
        time.sleep(2 * interval)  # the first status ticks
        req, wr = without_own(rig.kube.client.stats(), 1, 1)
        rig.kube.client.reset_stats()
        window = 5 * interval
        time.sleep(window)
        steady = rig.kube.client.stats()["totals"]
        rig.kube.client.reset_stats()
        rig.kube.client.patch(f"{JOBS.format(ns='default')}/bench", {"spec": {"workers": {"replicas": replicas + 10}}})
        time.sleep(3 * interval)
        scale_req, scale_wr = without_own(rig.kube.client.stats(), 1, 1)
        log(f"  replicas={replicas}: {shards} shard(s), {expected} children; create {req} requests / {wr} writes; "
            f"steady {steady['requests'] / (window / interval):.1f} requests per tick; rescale +10: {scale_req} / {scale_wr}")
        return {
            "shards": shards, "children": expected, "create_requests": req, "create_writes": wr,
            "requests_per_tick": round(steady["requests"] / (window / interval), 2),
            "writes_per_tick": round(steady["writes"] / (window / interval), 2),
            "rescale_requests": scale_req, "rescale_writes": scale_wr,
        }
    finally:
        rig.close()


def time_to_children(workdir: Path, jobs: int, interval: float) -> dict[str, Any]:
    """Seconds from `kubectl apply` of N jobs until all their children exist, vs direct POSTs."""
    rig = Rig(workdir, interval)
    try:
        docs = [job_doc(f"t-{i:04d}", replicas=4) for i in range(jobs)]
        per_job = 6
        start = time.monotonic()
        rig.kube.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs), timeout=300)
        rig.wait_children(per_job * jobs, jobs)
        operator_s = time.monotonic() - start
        # Baseline: the same children POSTed directly, one after another, into a fresh namespace.
        rig.kube.client.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "direct"}})
        t0 = time.monotonic()
        for i in range(jobs):
            d = job_doc(f"d-{i:04d}", replicas=4, namespace="direct")
            created = rig.kube.client.create(JOBS.format(ns="direct"), d)
            job = load_job(created)
            objs = [builders.build_token_secret(created, builders.new_token(), builders.new_tls(created)), *builders.build_children(created, job, Settings(), service_monitor=False)]
            for obj in objs:
                kind_path = {"ConfigMap": "configmaps", "Secret": "secrets", "Service": "services"}.get(obj["kind"])
                path = (
                    f"/api/v1/namespaces/direct/{kind_path}" if kind_path
                    else "/apis/apps/v1/namespaces/direct/deployments" if obj["kind"] == "Deployment"
                    else "/apis/networking.k8s.io/v1/namespaces/direct/networkpolicies"
                )
                rig.kube.client.create(path, obj)
        direct_s = time.monotonic() - t0
        log(f"  {jobs} job(s): operator {operator_s:.2f} s from kubectl apply to all children; direct POSTs {direct_s:.2f} s")
        return {"operator_s": round(operator_s, 3), "direct_posts_s": round(direct_s, 3), "ratio": round(operator_s / direct_s, 2)}
    finally:
        rig.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--jobs", type=int, default=200)
    p.add_argument("--interval", type=float, default=1.0, help="status timer interval of the operator")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-operator-") as tmp:
        root = Path(tmp)
        log("API cost of one job (fake API server request counters):")
        small = cost_per_job(root / "r10", 10, args.interval)
        big = cost_per_job(root / "r10000", 10_000, args.interval)
        log("time from apply until all children exist:")
        one = time_to_children(root / "t1", 1, args.interval)
        many = time_to_children(root / f"t{args.jobs}", args.jobs, args.interval)
    extra_shards = big["shards"] - small["shards"]
    result = {
        "bench": "operator",
        "replicas_10": small,
        "replicas_10000": big,
        "extra_shards": extra_shards,
        "create_writes_minus_shards_equal": big["create_writes"] - extra_shards == small["create_writes"],
        "baseline_min_writes_10": small["children"],
        "baseline_min_writes_10000": big["children"],
        "apply_to_children_1_job": one,
        f"apply_to_children_{args.jobs}_jobs": many,
    }
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
