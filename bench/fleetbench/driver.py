"""The driver: per scale, start a server and the client processes, measure a window, report.

Servers and clients are separate processes started through the entry script (``cfg.script``)
with the same flags as ever; the driver reads their stats files, the server's CPU and RSS from
/proc and its received TCP bytes from ``ss``, and ends with one JSON line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .config import OFFERED, FleetConfig, pct


def _spawn(cfg: FleetConfig, *argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(cfg.script), *argv], env=dict(os.environ, PYTHONUNBUFFERED="1"))


def _wait_file(path: Path, timeout: float, procs: list[subprocess.Popen[bytes]]) -> None:
    end = time.time() + timeout
    while not path.exists():
        if time.time() > end or any(p.poll() not in (None, 0) for p in procs):
            raise RuntimeError(f"timed out waiting for {path}")
        time.sleep(0.05)


def _proc_status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tcp_bytes_received(port: str) -> int:
    """Bytes the server's sockets on ``port`` received (TCP payload: HTTP/2 + gRPC framing included)."""
    text = subprocess.run(["ss", "-tinH", "state", "established", f"( sport = :{port} )"],
                          capture_output=True, text=True, check=True).stdout
    return sum(int(tok.split(":")[1]) for tok in text.split() if tok.startswith("bytes_received:"))


def run_scale(cfg: FleetConfig, tmp: Path, workers: int, clients: int, warmup: float, measure: float, noop: bool) -> dict[str, Any]:
    batch, acceptors = cfg.batch, str(cfg.acceptors)
    tag = f"{'noop' if noop else 'agg'}-{workers}"
    port_file, stats_file, go = tmp / f"{tag}.port", tmp / f"{tag}.stats", tmp / f"{tag}.go"
    think = workers * batch / OFFERED
    items = max(4 * workers * batch, 65_536)
    server = (_spawn(cfg, "--serve-noop", str(port_file)) if noop
              else _spawn(cfg, "--acceptors", acceptors, "--serve-aggregator", str(port_file), str(stats_file), str(items)))
    procs = [server]
    try:
        _wait_file(port_file, 60, procs)
        port = port_file.read_text()
        outs = [tmp / f"{tag}.client{i}.json" for i in range(clients)]
        for i, out in enumerate(outs):
            share = workers // clients + (1 if i < workers % clients else 0)
            argv = ["--acceptors", acceptors, "--client", "--port", port, "--workers", str(share), "--think", str(think), "--go", str(go),
                    "--warmup", str(warmup), "--measure", str(measure), "--out", str(out), "--seq", str(i)]
            procs.append(_spawn(cfg, *argv, "--batch", str(batch), *(["--noop"] if noop else []),
                                *(["--client-gc"] if cfg.client_gc else []), *(["--trace"] if cfg.trace else [])))
        t_conn = time.time()
        for out in outs:
            _wait_file(Path(str(out) + ".ready"), 300, procs)
        print(f"  {tag}: {workers} channels connected in {time.time() - t_conn:.1f} s", flush=True)
        go_tmp = go.with_suffix(".gotmp")
        go_tmp.write_text(str(time.time() + 0.5))
        go_tmp.replace(go)
        time.sleep(0.5 + warmup)
        s0 = json.loads(stats_file.read_text()) if not noop else None
        r0, c0 = _tcp_bytes_received(port), _cpu_seconds(server.pid)
        time.sleep(measure)
        s1 = json.loads(stats_file.read_text()) if not noop else None
        r1, c1 = _tcp_bytes_received(port), _cpu_seconds(server.pid)
        for p in procs[1:]:
            p.wait(timeout=120)
        rss_peak = _proc_status(server.pid, "VmHWM")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    data = [json.loads(o.read_text()) for o in outs]
    lat = np.array([x for d in data for x in d["lat"]]) * 1000
    calls = sum(d["calls"] for d in data)
    res = sum(d["results"] for d in data)
    row: dict[str, Any] = {"workers": workers, "calls_per_s": round(calls / measure),
                           "p50_ms": round(float(np.percentile(lat, 50)), 2) if lat.size else None,
                           "p99_ms": round(float(np.percentile(lat, 99)), 2) if lat.size else None,
                           "server_peak_rss_mib": round(rss_peak / 2**20, 1),
                           "server_cpu_us_per_call": round((c1 - c0) / max(calls, 1) * 1e6),
                           "server_cpu_share": round((c1 - c0) / measure, 2),
                           "client_loop_lag_p99_ms": pct([x for d in data for x in d["lag"]], 99)}
    if not noop:
        assert s0 is not None and s1 is not None
        srv = json.loads(Path(str(stats_file) + ".lat").read_text())
        handler = srv["handler_ms"][s0["n_handler"] : s1["n_handler"]]
        inbound = srv["inbound_ms"][s0["n_handler"] : s1["n_handler"]]
        outbound = [x for d in data for x in d["outbound"]]
        row.update(server_handler_p50_ms=pct(handler, 50), server_handler_p99_ms=pct(handler, 99),
                   inbound_p50_ms=pct(inbound, 50), inbound_p99_ms=pct(inbound, 99),
                   outbound_p50_ms=pct(outbound, 50), outbound_p99_ms=pct(outbound, 99),
                   server_loop_lag_p99_ms=pct(srv["lag_ms"][s0["n_lag"] : s1["n_lag"]], 99))
        lat_same = np.array([x for d in data for x in d["lat_same"]]) * 1000
        row.update(
            results_per_s=round((s1["accepted"] - s0["accepted"]) / (s1["t"] - s0["t"])),
            pushed_per_s=round(res / measure),
            offered_per_s=round(OFFERED),
            payload_bytes_per_result=round(sum(d["bytes"] for d in data) / max(res, 1), 2),
            tcp_bytes_in_per_result=round((r1 - r0) / max(s1["accepted"] - s0["accepted"], 1), 2),
            p99_ms_within_iteration=round(float(np.percentile(lat_same, 99)), 2) if lat_same.size else None,
            p50_ms_within_iteration=pct(lat_same, 50),
            boundary_calls=sum(len(d["lat_boundary"]) for d in data),
            p99_ms_boundary=pct([x * 1000 for d in data for x in d["lat_boundary"]], 99),
            connected=s1["connected"], iterations=s1["iterations"],
        )
    print(f"  {tag}: {row}", flush=True)
    return row


def drive(cfg: FleetConfig, scales: list[int], clients: int, ceiling_workers: int, measure: float) -> None:
    """The no-op ceiling, then each scale against the aggregator; ends with one JSON line."""
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        print(f"ceiling: no-op grpc.aio server, {ceiling_workers} closed-loop clients", flush=True)
        ceiling = run_scale(cfg, tmp, ceiling_workers, clients, 3.0, 8.0, noop=True)
        rows = []
        for w in scales:
            print(f"fleet of {w} simulated workers (batch {cfg.batch}, offered {OFFERED:,.0f} results/s)", flush=True)
            rows.append(run_scale(cfg, tmp, w, clients, warmup=max(3.0, 1.5 * w * cfg.batch / OFFERED), measure=measure, noop=False))
    print(json.dumps({
        "bench": "fleet", "batch": cfg.batch, "client_processes": clients, "cores": os.cpu_count(),
        "noop_calls_per_s": ceiling["calls_per_s"], "noop_p50_ms": ceiling["p50_ms"], "noop_p99_ms": ceiling["p99_ms"],
        "noop_results_per_s_ceiling": ceiling["calls_per_s"] * cfg.batch,
        "scales": rows, "load_avg_1m": round(os.getloadavg()[0], 2),
    }))
