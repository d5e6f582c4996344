"""The per-job ServiceMonitor settings read from the environment the chart sets."""

from __future__ import annotations

import re

import pytest
from esenas_operator import monitoring


def test_defaults_when_nothing_is_set() -> None:
    m = monitoring.JobMonitoring.from_env({})
    assert (m.enabled, dict(m.labels), m.interval) == (True, {}, "15s")


def test_every_setting_is_read() -> None:
    m = monitoring.JobMonitoring.from_env({
        monitoring.ENABLED_ENV: "False",
        monitoring.LABELS_ENV: '{"release": "kps", "team.example.com/owner": "rl"}',
        monitoring.INTERVAL_ENV: "1m30s",
    })
    assert m.enabled is False
    assert dict(m.labels) == {"release": "kps", "team.example.com/owner": "rl"}
    assert m.interval == "1m30s"


@pytest.mark.parametrize(("env", "message"), [
    ({monitoring.ENABLED_ENV: "maybe"}, "ESENAS_JOB_SERVICEMONITOR_ENABLED: 'maybe' is neither"),
    ({monitoring.LABELS_ENV: "release=kps"}, "ESENAS_JOB_SERVICEMONITOR_LABELS: not JSON"),
    ({monitoring.LABELS_ENV: '["release"]'}, "must be a JSON object"),
    ({monitoring.LABELS_ENV: '{"bad key!": "x"}'}, "'bad key!' is not a Kubernetes label key"),
    ({monitoring.LABELS_ENV: '{"release": 3}'}, "the value of 'release', 3, is not"),
    ({monitoring.LABELS_ENV: '{"release": "' + "x" * 64 + '"}'}, "is not a Kubernetes label value"),
    ({monitoring.INTERVAL_ENV: "15 s"}, "'15 s' is not a scrape interval"),
    ({monitoring.INTERVAL_ENV: "0"}, "'0' is not a scrape interval"),
])
def test_a_bad_value_names_its_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as exc:
        monitoring.JobMonitoring.from_env(env)
    assert str(exc.value).startswith(next(iter(env)))
