"""A hostile client holding the job's token (or not) against a real aggregator process.

One test per attack class. Each asserts that the attack is refused and counted under its
reason, that training still progresses (the iteration completes with honest results), and
that every number the aggregator serves stays finite. Also: grpc.health.v1 answers without a
token, and ``promtool check metrics`` passes on a real scrape.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from esenas_api import wire
from esenas_api.v1 import aggregator_pb2 as pb
from esenas_api.v1 import aggregator_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.runtime.hostile import (
    AUTH,
    Client,
    counter,
    finish_iteration,
    items_of,
    params,
    raw_call,
    results,
)
from tests.integration.runtime.procs import (
    REPO,
    AggregatorProc,
    metric,
    start_aggregator,
    stop_all,
    write_job,
)

OBS_DIM = 4  # InvertedPendulum-v5


def test_absent_or_wrong_token_is_refused_before_anything_else(agg: AggregatorProc, stub: pb_grpc.AggregatorStub) -> None:
    before = counter(agg, "token")
    for md in ((("authorization", "Bearer wrong"),), (), (("authorization", "wrong"),)):
        for call in (
            lambda m: stub.Exchange(pb.ExchangeRequest(worker_id="x", max_items=8), metadata=m, timeout=5),
            lambda m: stub.GetParams(pb.ParamsRequest(version=0), metadata=m, timeout=5),
        ):
            with pytest.raises(grpc.RpcError) as e:
                call(md)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert counter(agg, "token") == before + 6
    finish_iteration(agg, stub)


def test_nonfinite_and_huge_rewards_are_refused(agg: AggregatorProc, stub: pb_grpc.AggregatorStub) -> None:
    nonfinite, bound = counter(agg, "nonfinite"), counter(agg, "reward_bound")
    c = Client(stub, "poisoner")
    for rp, rn in ((math.nan, 0.0), (0.0, math.inf), (1e308, 1e308), (-1e7, 0.0)):
        reply = c.lease()
        out = c.push(reply, results(items_of(reply)[:1], rp=rp, rn=rn))
        assert out.rejected == 1 and out.accepted == 0
    assert counter(agg, "nonfinite") == nonfinite + 2
    assert counter(agg, "reward_bound") == bound + 2
    status = agg.status()
    assert status["bestReward"] is None or abs(status["bestReward"]) < 1e6
    finish_iteration(agg, stub)


def test_huge_or_inconsistent_observation_statistics_are_refused(agg: AggregatorProc, stub: pb_grpc.AggregatorStub) -> None:
    before = counter(agg, "obs_stats")
    c = Client(stub, "obs-poisoner")
    bad = (
        wire.encode_obs_stats(10, np.full(OBS_DIM, 2e39), np.full(OBS_DIM, 4e78)),  # count 10: 10 steps, absurd means
        wire.encode_obs_stats(2, np.zeros(OBS_DIM), np.zeros(OBS_DIM)),  # count is not the batch's steps
        wire.encode_obs_stats(10, np.full(OBS_DIM, 10.0), np.full(OBS_DIM, 1.0)),  # sum^2 > count * sumsq
    )
    for stats in bad:
        reply = c.lease()
        out = c.push(reply, results(items_of(reply)[:1], steps=10), obs_stats=stats)
        assert out.rejected == 1 and out.accepted == 0
    assert counter(agg, "obs_stats") == before + 3
    new = finish_iteration(agg, stub)
    assert np.all(np.abs(new) < 1e3)


def test_absurd_step_counts_are_refused(agg: AggregatorProc, stub: pb_grpc.AggregatorStub) -> None:
    before, steps_before = counter(agg, "steps_bound"), agg.status()["envSteps"]
    c = Client(stub, "stepper")
    for steps in (2**32 - 1, 2001, 0):  # a pair is 2 episodes of at most maxEpisodeSteps = 1000
        reply = c.lease()
        assert c.push(reply, results(items_of(reply)[:1], steps=steps)).rejected == 1
    assert counter(agg, "steps_bound") == before + 3
    assert agg.status()["envSteps"] == steps_before
    finish_iteration(agg, stub)


def test_results_for_items_leased_to_another_are_refused(agg: AggregatorProc, stub: pb_grpc.AggregatorStub) -> None:
    before = counter(agg, "not_leased")
    victim, thief = Client(stub, "victim"), Client(stub, "thief")
    reply = victim.lease(max_items=2)
    theirs = items_of(reply)
    # The thief knows the victim's items (and even its worker id), but not its lease.
    assert thief.push(reply, results(theirs), lease=reply.lease ^ 0xFFFF).rejected == len(theirs)
    spoof = Client(stub, "victim")
    assert spoof.push(reply, results(theirs), lease=12345).rejected == len(theirs)
    other = thief.lease(max_items=2)
    mixed = np.concatenate([items_of(other), theirs])
    out = thief.push(other, results(mixed))  # its own items count; the victim's do not
    assert out.accepted == len(items_of(other)) and out.rejected == len(theirs)
    assert counter(agg, "not_leased") == before + 3 * len(theirs)
    assert victim.push(reply, results(theirs)).accepted == len(theirs)  # the honest result still counts
    finish_iteration(agg, stub)


def test_replays_are_refused(agg: AggregatorProc, stub: pb_grpc.AggregatorStub) -> None:
    before, accepted = counter(agg, "replay"), metric(agg.get("/metrics"), "esenas_results_total")
    c = Client(stub, "replayer")
    reply = c.lease(max_items=1)
    body = results(items_of(reply))
    assert c.push(reply, body).accepted == 1
    for _ in range(3):
        assert c.push(reply, body).rejected == 1
    assert counter(agg, "replay") == before + 3
    assert metric(agg.get("/metrics"), "esenas_results_total") == accepted + 1
    finish_iteration(agg, stub)


def test_wrong_iterations_are_refused_or_dropped(agg: AggregatorProc, stub: pb_grpc.AggregatorStub) -> None:
    unknown, stale = counter(agg, "unknown_iteration"), metric(agg.get("/metrics"), "esenas_results_stale_total")
    c = Client(stub, "time-traveller")
    reply = c.lease(max_items=1)
    assert c.push(reply, results(items_of(reply)), iteration=reply.iteration + 999).rejected == 1
    assert counter(agg, "unknown_iteration") == unknown + 1
    finish_iteration(agg, stub)
    c.push(reply, results(items_of(reply)))  # the finished iteration: stale, dropped
    assert metric(agg.get("/metrics"), "esenas_results_stale_total") == stale + 1


def test_malformed_protobuf_is_invalid_argument_counted_and_quiet(agg: AggregatorProc, stub: pb_grpc.AggregatorStub) -> None:
    before, oversize = counter(agg, "malformed"), counter(agg, "oversize")
    log_before = agg.text().count("malformed request")
    with grpc.insecure_channel(agg.address) as ch:
        codes = {raw_call(ch, b"\xff\xff\xff\xff\x0f" + bytes([i])) for i in range(20)}
    assert codes == {grpc.StatusCode.INVALID_ARGUMENT}
    assert counter(agg, "malformed") == before + 20
    log = agg.text()
    assert log.count("malformed request") - log_before <= 1  # rate-limited: one line, no traceback
    assert "Traceback" not in log
    empty = counter(agg, "malformed")
    with grpc.insecure_channel(agg.address) as ch:  # a call that ends its stream without a message
        call = ch.stream_unary("/esenas.api.v1.Aggregator/Exchange", request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as e:
            call(iter(()), metadata=AUTH, timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert counter(agg, "malformed") == empty + 1 and counter(agg, "oversize") == oversize
    c = Client(stub, "garbler")
    reply = c.lease(max_items=1)
    assert c.push(reply, b"\x00" * 27).rejected == 1  # a truncated record
    finish_iteration(agg, stub)


def test_oversize_messages_are_refused_by_the_transport_and_counted(agg: AggregatorProc, stub: pb_grpc.AggregatorStub) -> None:
    before = counter(agg, "oversize")
    c = Client(stub, "bloater")
    reply = c.lease(max_items=1)
    for size in (1 << 20, 7 << 20):
        with pytest.raises(grpc.RpcError) as e:
            c.push(reply, results(items_of(reply)) * (size // 28))
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert counter(agg, "oversize") == before + 2
    finish_iteration(agg, stub)


def test_spoofed_worker_ids_do_not_inflate_the_fleet(agg: AggregatorProc, stub: pb_grpc.AggregatorStub) -> None:
    finish_iteration(agg, stub)
    connected = agg.status()["workersConnected"]
    taken = 0
    for i in range(300):  # made-up ids that pull (and hold) items but never return any work
        taken += len(items_of(Client(stub, f"ghost-{i}").lease(max_items=8, wait_ms=0)))
    assert taken > 0
    assert agg.status()["workersConnected"] == connected
    finish_iteration(agg, stub)  # what the ghosts hold is backed up


def test_health_answers_without_token(agg: AggregatorProc) -> None:
    with grpc.insecure_channel(agg.address) as ch:
        h = health_pb2_grpc.HealthStub(ch)
        for service in ("", "esenas.api.v1.Aggregator"):
            r = h.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert r.status == health_pb2.HealthCheckResponse.SERVING


def test_promtool_check_metrics_passes_on_a_real_scrape(agg: AggregatorProc, stub: pb_grpc.AggregatorStub) -> None:
    promtool = shutil.which("promtool") or str(REPO / ".tools/bin/promtool")
    if not Path(promtool).exists():
        pytest.fail("promtool not found: run scripts/fetch-tools.sh (Debian package prometheus)")
    finish_iteration(agg, stub)  # some traffic, so counters have samples
    text = agg.get("/metrics")
    for name in ("esenas_iteration", "esenas_workers_connected", "esenas_iteration_duration_seconds_bucket", "esenas_job_done"):
        assert name in text
    assert "worker_id" not in text and "honest" not in text and "poisoner" not in text  # no per-worker labels
    r = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    assert params(stub, Client(stub, "honest").lease().version).size > 0


def test_a_lying_worker_cannot_set_the_best_or_end_the_job(tmp_path: Path) -> None:
    """Within every bound, one worker answers each item of three iterations with 999,999, on a job
    that stops at targetReward 1000. The aggregator replays each claimed best itself
    (esenas_aggregator.confirm) before adopting it: the job runs on, bestReward is what the policy
    really scores, and the corrections are counted and logged."""
    job = write_job(tmp_path, **{"stopping.targetReward": 1000})
    agg = start_aggregator(tmp_path, job, exit_when_done=False)
    try:
        with grpc.insecure_channel(agg.address) as ch:
            liar = Client(pb_grpc.AggregatorStub(ch), "liar")
            end = time.monotonic() + 60
            while int(agg.status()["iteration"]) < 3:
                assert time.monotonic() < end, agg.text()[-3000:]
                reply = liar.lease(max_items=64, wait_ms=2000)
                if len(items := items_of(reply)):
                    assert liar.push(reply, results(items, rp=999_999.0, rn=0.0, steps=1000)).rejected == 0
            corrected = {"esenas_job": "inverted-pendulum", "esenas_namespace": "default", "outcome": "corrected"}
            # the first claim's replay, then the highest of those that came meanwhile (confirm.Confirmer.submit)
            while metric(agg.get("/metrics"), "esenas_best_claims_total", **corrected) < 2:
                assert time.monotonic() < end, agg.text()[-3000:]
                time.sleep(0.2)
            status = agg.status()
        assert status["phase"] == "Running", status
        assert status["bestReward"] is not None and 0 < status["bestReward"] < 1000, status
        assert metric(agg.get("/metrics"), "esenas_reward_best") == status["bestReward"]
        assert agg.text().count("was reported at 999999, but replaying its items") >= 2
        result = agg.get("/result")
        assert result["reward"] == status["bestReward"]
    finally:
        stop_all(agg)


def _report_failed(stub: pb_grpc.AggregatorStub, worker_id: str, reply: pb.ExchangeReply, item: int) -> pb.ExchangeReply:
    out: pb.ExchangeReply = stub.Exchange(pb.ExchangeRequest(
        worker_id=worker_id, session=reply.session, iteration=reply.iteration, lease=reply.lease, max_items=0,
        failed_items=np.array([item], "<u4").tobytes(), failure="boom\nFORGED LOG LINE \x1b[31mred"), metadata=AUTH, timeout=30)
    return out


def test_two_made_up_ids_cannot_fail_the_job_by_reporting_an_item_failed(tmp_path: Path) -> None:
    """Two callers reporting the same item failed fail the job (bounds.ItemWatch), but ids are a
    caller's own word: one client reported an item under id A, leased it again under id B and
    reported it again, and the job failed with EnvironmentFailed. The aggregator now replays the
    item itself first (esenas_aggregator.verify): it runs fine, so the job goes on, the dismissal
    is counted and logged, and nothing of the forged failure line reaches the log as written."""
    job = write_job(tmp_path, **{"es.perturbations": 4, "es.topDirections": 0, "es.exactEvals": 0, "workers.batchSize": 8})
    agg = start_aggregator(tmp_path, job, exit_when_done=False)
    try:
        with grpc.insecure_channel(agg.address) as ch:
            stub = pb_grpc.AggregatorStub(ch)
            finish_iteration(agg, stub)  # "honest" is proven and connected: one caller alone confirms nothing
            first = Client(stub, "made-up\nA \x1b[31m").lease(max_items=64, wait_ms=2000)
            item = int(items_of(first)["index"][0])
            _report_failed(stub, "made-up\nA \x1b[31m", first, item)
            second = Client(stub, "made-up B")
            for _ in range(20):  # the reported item is re-issued at once: B is soon handed it
                reply = second.lease(max_items=64, wait_ms=2000)
                if item in items_of(reply)["index"].tolist():
                    _report_failed(stub, "made-up B", reply, item)
                    break
            else:
                pytest.fail(f"item {item} was never re-issued\n{agg.text()[-3000:]}")
            dismissed = {"esenas_job": "inverted-pendulum", "esenas_namespace": "default", "outcome": "dismissed"}
            end = time.monotonic() + 60
            while metric(agg.get("/metrics"), "esenas_failed_items_replayed_total", **dismissed) < 1:
                assert time.monotonic() < end and agg.status()["phase"] == "Running", agg.text()[-3000:]
                time.sleep(0.2)
            assert agg.status()["phase"] == "Running", agg.status()
            finish_iteration(agg, stub)  # training goes on
        text = agg.text()
        assert f"item {item} was reported failed by two workers, but the aggregator's replay of it ran fine" in text
        assert "\x1b" not in text and "\nA " not in text and "FORGED" not in text
    finally:
        stop_all(agg)
