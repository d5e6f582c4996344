"""bench/obs_drift.py: the drift of one batch against a reference, and the script end to end, small."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from esenas.normalizer import FLAT_STD
from esenas.results import Results

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("obs_drift", ROOT / "bench" / "obs_drift.py")
assert _spec is not None and _spec.loader is not None
obs_drift = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(obs_drift)


def _batch(rows: list[list[float]]) -> Results:
    x = np.asarray(rows, np.float64)
    none = np.zeros(0)
    return Results(none.astype(np.uint32), none, none, none.astype(np.uint32), float(len(x)), x.sum(axis=0), (x * x).sum(axis=0))


def test_a_batch_three_stds_off_in_mean_and_spread_reads_three_and_flat_components_are_left_out() -> None:
    # component 0: always 1 + 3 x 2 = 7 against mean 1, std 2; component 1 is flat in the reference, so
    # its 1e6 is not read; component 2: mean on the reference, spread +-4 against std 1 -> rms 4.
    batch = _batch([[7.0, 1e6, 4.0], [7.0, 1e6, -4.0]])
    z_mean, z_rms = obs_drift.drift(batch, np.array([1.0, 0.0, 0.0]), np.array([2.0, FLAT_STD, 1.0]))
    assert z_mean == pytest.approx(3.0)
    assert z_rms == pytest.approx(4.0)


def test_the_first_iterations_reference_is_the_batches_medians_so_one_far_batch_does_not_move_it() -> None:
    honest = [_batch([[0.0 + k * 0.1], [1.0 + k * 0.1]]) for k in range(9)]
    poisoned = _batch([[1e6], [1e6]])
    centre, scale = obs_drift._robust_reference([*honest, poisoned])
    assert abs(centre[0] - 0.9) < 0.1 and 0.4 < scale[0] < 1.0
    assert obs_drift.drift(poisoned, centre, scale)[0] > 1e5
    assert max(obs_drift.drift(b, centre, scale)[0] for b in honest) < 2.0


def test_the_script_prints_a_line_per_iteration_and_a_summary(tmp_path: Path, bench_line: Callable[..., dict[str, Any]]) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob", "metadata": {"name": "d"},
                                   "spec": {"environment": {"id": "Pendulum-v1", "maxEpisodeSteps": 20},
                                            "es": {"perturbations": 4, "exactEvals": 1}}}))
    line = bench_line("obs_drift.py", str(job), "--iterations", "3", "--batch", "2")
    assert line["bench"] == "obs_drift" and line["task"] == "Pendulum-v1" and line["iterations"] == 3
    assert line["batches"] == 3 * 3  # 4 pairs and 1 exact eval in leases of 2
    assert 0.0 < line["z_mean_max"] <= line["z_rms_max"]  # a mean square about a point bounds the mean's distance
    assert line["over_10"] >= line["over_30"] >= line["over_100"] >= 0
