"""gRPC over TLS between real processes: the aggregator serves the job's certificate, workers
trust only the job's CA, and the token still authenticates each call."""

from __future__ import annotations

import grpc
import pytest
from esenas_api import tls
from esenas_api.v1 import aggregator_pb2 as pb
from esenas_api.v1 import aggregator_pb2_grpc as pb_grpc

from tests.integration.runtime.hostile import AUTH, counter
from tests.integration.runtime.procs import start_aggregator, start_worker, stop_all, write_job


def test_workers_train_over_tls_and_strangers_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    job = write_job(tmp_path, **{"stopping.targetReward": 1e9, "stopping.maxIterations": 1000})
    tls.issue("tls-job", ["127.0.0.1", "localhost"]).write(tmp_path / "tls")
    other = tls.issue("another-job", ["127.0.0.1"])
    other.write(tmp_path / "other")
    agg = start_aggregator(
        tmp_path, job, 0, False, "aggregator",
        "--tls-cert-file", str(tmp_path / "tls/tls.crt"), "--tls-key-file", str(tmp_path / "tls/tls.key"),
    )
    worker = start_worker(tmp_path, job, agg.address, "w0", "--tls-ca-file", str(tmp_path / "tls/ca.crt"))
    stranger = start_worker(tmp_path, job, agg.address, "stranger", "--tls-ca-file", str(tmp_path / "other/ca.crt"), "--give-up-after", "2")
    try:
        agg.wait_for(lambda s: s["iteration"] >= 3, 60, "three iterations over TLS")
        assert "over TLS" in agg.text()
        # A worker that trusts another job's CA never connects.
        assert stranger.wait(30) == 3, stranger.text()[-2000:]
        # Plaintext, and TLS with another job's CA: no connection at all.
        with grpc.insecure_channel(agg.address) as ch, pytest.raises(grpc.RpcError) as e:
            pb_grpc.AggregatorStub(ch).Exchange(pb.ExchangeRequest(worker_id="x"), metadata=AUTH, timeout=5)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        creds = grpc.ssl_channel_credentials(root_certificates=other.ca_pem)
        with grpc.secure_channel(agg.address, creds) as ch, pytest.raises(grpc.RpcError) as e:
            pb_grpc.AggregatorStub(ch).Exchange(pb.ExchangeRequest(worker_id="x"), metadata=AUTH, timeout=5)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        # The right CA without the token: TLS is not authentication, the token still is.
        before = counter(agg, "token")
        creds = grpc.ssl_channel_credentials(root_certificates=(tmp_path / "tls/ca.crt").read_bytes())
        with grpc.secure_channel(agg.address, creds) as ch, pytest.raises(grpc.RpcError) as e:
            pb_grpc.AggregatorStub(ch).Exchange(pb.ExchangeRequest(worker_id="x"), timeout=5)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert counter(agg, "token") == before + 1
    finally:
        stop_all(agg, worker, stranger)


def test_one_tls_flag_without_the_other_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    job = write_job(tmp_path)
    tls.issue("j", ["127.0.0.1"]).write(tmp_path / "tls")
    r = subprocess.run(
        [sys.executable, "-m", "esenas_aggregator", "--job", str(job), "--checkpoint-dir", str(tmp_path / "ck"),
         "--token-file", str(tmp_path / "token"), "--tls-cert-file", str(tmp_path / "tls/tls.crt")],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 2
    assert "--tls-cert-file and --tls-key-file go together" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "esenas_worker", "--job", str(job), "--aggregator", "127.0.0.1:1",
         "--token-file", str(tmp_path / "token"), "--tls-ca-file", str(tmp_path / "token")],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 2 and "--tls-ca-file" in r.stderr and "not a PEM file" in r.stderr
