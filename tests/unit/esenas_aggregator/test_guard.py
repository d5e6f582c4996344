"""The finite-state guarantee: a poisoned update is refused, counted, and its iteration re-run;
a blow-up that repeats fails the job with the reason instead of looping."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import numpy as np
from esenas.algorithm import ESENAS
from esenas.results import Results
from esenas.spec import load_job
from esenas_aggregator.app import Aggregator, AggregatorConfig
from esenas_aggregator.guard import nonfinite_parts
from esenas_api import wire

REPO = Path(__file__).resolve().parents[3]
JOB = REPO / "manifests/examples/inverted-pendulum.yaml"


def _poisoned(items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rp, rn = np.ones(len(items)), np.zeros(len(items))
    rp[0] = rn[0] = 1e308  # finite, and overflows the fitness shaping
    return rp, rn


def test_nonfinite_parts_names_what_a_poisoned_tell_broke() -> None:
    algo = ESENAS(load_job(JOB).spec, 4, 1)
    assert nonfinite_parts(algo.state_dict()) == []
    plan = algo.ask()
    rp, rn = _poisoned(plan.items)
    n = len(plan.items)
    with np.errstate(all="ignore"):
        algo.tell(Results(plan.items["index"], rp, rn, np.full(n, 10, np.uint32), 0.0, np.zeros(4), np.zeros(4)))
    assert nonfinite_parts(algo.state_dict()) == ["params"]


async def _drive(agg: Aggregator, poisons: list[bool]) -> list[int]:
    """Answer one iteration per entry of ``poisons`` in-process (the runtime's bounds off, so
    the poison reaches the update); returns the iteration number each answer was for."""
    rt = agg.runtime
    rt.bounds = None
    train = asyncio.ensure_future(agg._train())
    seen = []
    try:
        for poison in poisons:
            lease = await rt.pull(64, 5000, "w")
            items = wire.decode_items(lease.items)
            seen.append(lease.iteration)
            rp, rn = _poisoned(items) if poison else (np.ones(len(items)), np.zeros(len(items)))
            n = len(items)
            body = wire.encode_results(items["index"], rp, rn, np.full(n, 10), items["topology"])
            assert rt.push(rt.session, lease.iteration, body, b"", lease.lease_id, "w").accepted == n
            await asyncio.sleep(0.05)
            if agg.done:
                break
    finally:
        agg.request_stop()
        await asyncio.wait_for(train, 10)
    return seen


def _aggregator(tmp_path: Path) -> Aggregator:
    job = load_job(JOB)
    # one lease holds the whole iteration (the example's 8 pairs), so each answer is an iteration
    job = dataclasses.replace(job, spec=dataclasses.replace(job.spec, es=dataclasses.replace(job.spec.es, exact_evals=0)))
    return Aggregator(AggregatorConfig(job=job, checkpoint_dir=tmp_path, token="t"), obs_dim=4, act_dim=1)


def test_a_poisoned_update_is_refused_and_its_iteration_rerun(tmp_path: Path) -> None:
    agg = _aggregator(tmp_path)
    with np.errstate(all="ignore"):
        seen = asyncio.run(_drive(agg, [True, False, False]))
    assert seen == [0, 0, 1]  # iteration 0 ran again after its refused update, then training went on
    assert "esenas_updates_refused_total" in agg.metrics.render().decode()
    assert agg.metrics.updates_refused._value.get() == 1
    assert agg.phase == "Running" and agg.algo.iteration == 2
    assert nonfinite_parts(agg.algo.state_dict()) == []


def test_a_repeating_blowup_fails_the_job_with_the_reason(tmp_path: Path) -> None:
    agg = _aggregator(tmp_path)
    with np.errstate(all="ignore"):
        seen = asyncio.run(_drive(agg, [True] * 5))
    assert seen == [0, 0, 0]
    assert agg.phase == "Failed" and agg.reason.startswith("NonFiniteUpdate: the update of iteration 0 made params non-finite")
    assert np.all(np.isfinite(agg.algo.params))


def test_http_documents_serve_a_stray_nonfinite_number_as_null() -> None:
    import json

    from esenas_aggregator.http import _dumps

    doc = json.loads(_dumps({"a": float("nan"), "b": [1.0, float("inf")], "c": np.float64(-np.inf), "d": 2}))
    assert doc == {"a": None, "b": [1.0, None], "c": None, "d": 2}
