"""The operator's settings: read once from the flags and an environment mapping, never from os.environ by the handlers."""

from __future__ import annotations

import os

import pytest
from esenas_operator import settings
from esenas_operator.main import parse_args
from esenas_operator.monitoring import JobMonitoring
from esenas_operator.settings import Settings


def test_defaults_without_flags_or_variables() -> None:
    s = settings.read([], {})
    assert s == Settings()
    assert (s.namespaces, s.metrics_port, s.liveness_port, s.peering, s.status_interval, s.workers) == ((), 8080, 8081, None, 10.0, 8)
    assert s.liveness_endpoint == "http://0.0.0.0:8081/healthz"
    assert s.job_monitoring == JobMonitoring()


def test_flags_win_over_variables_which_win_over_defaults() -> None:
    env = {
        "ESENAS_OPERATOR_METRICS_PORT": "9000", "ESENAS_OPERATOR_LIVENESS_PORT": "0", "ESENAS_OPERATOR_BIND": "127.0.0.1",
        "ESENAS_STATUS_INTERVAL": "4", "ESENAS_OPERATOR_WORKERS": "3", "HOSTNAME": "esenas-operator-7f9c",
        "ESENAS_WORKER_IMAGE": "w:1", "ESENAS_AGGREGATOR_IMAGE": "a:1", "ESENAS_IMAGE_PULL_POLICY": "Always",
        "ESENAS_JOB_SERVICEMONITOR_LABELS": '{"release": "kps"}',
    }
    s = settings.read(["-n", "ml", "--namespace", "research", "--standalone", "--metrics-port", "0", "--status-interval", "2.5"], env)
    assert s.namespaces == ("ml", "research") and s.peering is None
    assert (s.metrics_port, s.status_interval) == (0, 2.5)  # flags
    assert (s.liveness_port, s.bind, s.workers, s.instance) == (0, "127.0.0.1", 3, "esenas-operator-7f9c")  # variables
    assert s.liveness_endpoint is None
    assert (s.worker_image, s.aggregator_image, s.image_pull_policy) == ("w:1", "a:1", "Always")
    assert dict(s.job_monitoring.labels) == {"release": "kps"}


def test_standalone_and_peering_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    assert settings.read(["--peering", "esenas"], {}).peering == "esenas"
    with pytest.raises(SystemExit):
        settings.read(["--standalone", "--peering", "esenas"], {})
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_bad_variable_stops_the_operator_at_start_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        settings.read([], {"ESENAS_JOB_SERVICEMONITOR_ENABLED": "maybe"})
    assert exc.value.code == 2
    assert "ESENAS_JOB_SERVICEMONITOR_ENABLED: 'maybe' is neither" in capsys.readouterr().err


def test_settings_are_frozen_and_reading_them_writes_no_environment() -> None:
    before = dict(os.environ)
    s = settings.read(["--metrics-port", "1234", "--status-interval", "7"], {})
    assert dict(os.environ) == before
    with pytest.raises(AttributeError):
        s.metrics_port = 1  # type: ignore[misc]


def test_parse_args_keeps_the_flags_the_chart_passes() -> None:
    a = parse_args(["--metrics-port=8080", "--liveness-port=8081", "--status-interval=10", "--namespace=ml"], {})
    assert (a.metrics_port, a.liveness_port, a.status_interval, a.namespace) == (8080, 8081, 10.0, ["ml"])
