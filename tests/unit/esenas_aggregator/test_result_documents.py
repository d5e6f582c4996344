"""The aggregator's result has the documents of an ``esenas run`` folder: /summary gives the local
summary.json keys, and the result folder on its volume holds the same files as a local run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
from aiohttp.test_utils import TestClient, TestServer
from esenas.results import Results
from esenas.run_summary import DOCUMENTS, summary
from esenas.spec import load_job
from esenas_aggregator import http
from esenas_aggregator.app import Aggregator, AggregatorConfig

REPO = Path(__file__).resolve().parents[3]
JOB = REPO / "manifests/examples/inverted-pendulum.yaml"


def _trained(tmp_path: Path, iterations: int = 2) -> Aggregator:
    agg = Aggregator(AggregatorConfig(job=load_job(JOB), checkpoint_dir=tmp_path, token="t"), obs_dim=4, act_dim=1)
    for _ in range(iterations):
        plan = agg.algo.ask()
        n = len(plan.items)
        agg.algo.tell(Results(plan.items["index"], np.linspace(1, 2, n), np.zeros(n), np.full(n, 10, np.uint32),
                              0.0, np.zeros(4), np.zeros(4)))
    agg.phase, agg.reason = "Succeeded", "max iterations 2 reached"
    return agg


def test_the_result_folder_holds_the_local_documents_and_the_final_status(tmp_path: Path) -> None:
    agg = _trained(tmp_path)
    agg._write_result()
    out = tmp_path / "result"
    assert sorted(p.name for p in out.iterdir()) == sorted([*DOCUMENTS, "status.json"])
    local = summary(agg.algo, agg.cfg.job, agg.reason, 0.0)
    got = json.loads((out / "summary.json").read_text())
    assert list(got) == list(local)
    assert got["iterations"] == 2 and got["stopReason"] == "max iterations 2 reached"
    assert len(json.loads((out / "history.json").read_text())) == 2
    assert json.loads((out / "status.json").read_text())["phase"] == "Succeeded"
    assert agg.status()["resultPath"] == str(out / "policy.json")


def test_summary_endpoint_serves_the_local_keys_once_there_is_a_result(tmp_path: Path) -> None:
    async def get(agg: Aggregator) -> tuple[int, dict[str, object]]:
        app = http.build_app(agg.metrics, agg.status, agg.result, agg.history, agg.summary)
        async with TestClient(TestServer(app)) as client:
            resp = await client.get("/summary")
            return resp.status, await resp.json()

    fresh = Aggregator(AggregatorConfig(job=load_job(JOB), checkpoint_dir=tmp_path / "a", token="t"), obs_dim=4, act_dim=1)
    assert asyncio.run(get(fresh)) == (404, {"error": "no result yet"})
    agg = _trained(tmp_path / "b")
    code, doc = asyncio.run(get(agg))
    assert code == 200
    assert list(doc) == list(summary(agg.algo, agg.cfg.job, agg.reason, 0.0))
    assert doc["job"] == "inverted-pendulum" and doc["iterations"] == 2
