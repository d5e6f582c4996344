"""The terms the status timer enforces, and their record on the aggregator Deployment (terms.py)."""

from __future__ import annotations

from typing import Any

from esenas.spec import Job
from esenas_operator import builders, terms
from esenas_operator.settings import Settings
from esenas_operator.validation import validate_job


def _body(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob",
        "metadata": {"name": "j", "namespace": "ns", "uid": "u", "generation": 4},
        "spec": {"environment": {"id": "Hopper-v5"}, "workers": {"replicas": 4}, **spec},
    }


def _job(**spec: Any) -> Job:
    return validate_job(_body(**spec))


def test_the_aggregator_deployment_records_the_terms_and_they_read_back_with_the_status_replicas() -> None:
    job = _job(backoffLimit=7, suspend=True, stopping={"deadlineSeconds": 600})
    deployment = builders.build_aggregator_deployment(_body(backoffLimit=7, suspend=True, stopping={"deadlineSeconds": 600}), job, Settings())
    text = deployment["metadata"]["annotations"][terms.ANNOTATION]
    assert terms.recorded(text, {"workers": {"desired": 4}}) == terms.of(job) == terms.Terms(True, 4, 7, 600)
    assert terms.recorded(terms.annotation(_job()), {}) == terms.Terms(False, 0, 3, None)


def test_scaling_leaves_the_aggregator_deployment_as_it_was() -> None:
    one, other = (builders.build_aggregator_deployment(_body(workers={"replicas": n}), _job(workers={"replicas": n}), Settings()) for n in (4, 4000))
    assert one == other


def test_an_unknown_or_broken_record_reads_as_unknown() -> None:
    for text in (None, "", "not json", "[1]", '{"suspend": true}', '{"backoffLimit": "x"}'):
        assert terms.recorded(text, {"workers": {"desired": 2}}) is None, text


def test_a_refused_edit_runs_on_the_applied_terms_else_the_jobs_own() -> None:
    own, applied = terms.of(_job(backoffLimit=50)), terms.of(_job(backoffLimit=1))
    assert terms.running(own, True, applied) == applied
    assert terms.running(None, True, applied) == applied, "the parser refused the job's own spec"
    assert terms.running(own, False, applied) == own, "a valid edit not applied yet: the job's own"
    assert terms.running(None, False, applied) == applied
    assert terms.running(own, True, None) == own, "nothing recorded (an older operator's Deployment)"
    assert terms.running(None, True, None) is None
