"""Thin kopf handlers: validate, create or patch what the builders return, and mirror the aggregator.

Worker pods are never watched: the operator manages Deployments (read through an index over its
own Deployments, esenas_operator.indices), so its API writes per job grow with the number of
shards, not with replicas.

The handlers are registered by :func:`registry` (the status timer's interval is a setting) and read
the operator's settings from kopf's ``memo.settings``, which main.py sets once at start.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any, Final

import kopf
from esenas.spec import API_GROUP, SpecError
from kubernetes.client.exceptions import ApiException

from esenas_operator import claims, decide, drift, indices, metrics, names, results, starting, terms
from esenas_operator.aggregator_http import fetch_report
from esenas_operator.converge import apply_children
from esenas_operator.crd import PLURAL, VERSION
from esenas_operator.kube import Kube, Refused, Stale, api_message, load_config
from esenas_operator.ledger import Ledger
from esenas_operator.persistence import DiffBaseStorage, ProgressStorage
from esenas_operator.reasons import INVALID_SPEC, STALE_CHILD
from esenas_operator.settings import Settings
from esenas_operator.status import (
    TERMINAL,
    AggregatorReport,
    diff,
    restart_count,
    set_condition,
    termination_message,
    ttl_expired,
    workers_failing,
)
from esenas_operator.validation import validate_job

JOB_API: Final = f"{API_GROUP}/{VERSION}"
#: Worker pods listed per status tick while some are not ready: enough to name why they fail, cheap at 10,000.
WORKER_PODS_LISTED: Final = 50
#: Seconds between a reconcile's tries while an earlier job's Secret or claim awaits the garbage collector.
STALE_RETRY: Final = 5
_kube: Kube | None = None
#: The spec each job's children were last applied from, for the status timer while an edit is
#: refused, for drift repairs and for the checkpoint volume's check (ledger.py).
_applied = Ledger()
#: The refused edit of each job, (generation, message), until a valid one is applied: the status
#: timer re-asserts it, since its own merge patch of the conditions list may be computed from a
#: status read before the refusal was written (kopf runs timers beside change handlers).
_refused: dict[tuple[str, str], decide.Refusal] = {}
Logger = logging.Logger | logging.LoggerAdapter[Any]


def kube() -> Kube:
    global _kube
    if _kube is None:
        _kube = Kube(load_config())
    return _kube


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _settings(memo: Any) -> Settings:
    """The operator's settings, which main.py puts in kopf's memo."""
    settings: Settings = memo.settings
    return settings


def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Timeouts, storage keys and event level; the metrics endpoint."""
    ours = _settings(memo)
    # API timeouts: without them a half-open connection (API server restart, LB idle cut) hangs
    # a watch or a handler forever. Watches are renewed every 5 min, below common LB idle limits.
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    # kopf's state goes in status.kopf, not in annotations: its diff base copies the spec, and
    # with kubectl's copy a large spec passed the 256 KiB annotation limit (esenas_operator.persistence).
    settings.persistence.progress_storage = ProgressStorage()
    settings.persistence.diffbase_storage = DiffBaseStorage()
    settings.persistence.finalizer = f"{API_GROUP}/finalizer"
    # Handler log lines stay in the log; Events are posted explicitly, on state changes only,
    # and name the operator (kubectl describe's "From" column), not the framework.
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = names.MANAGER
    settings.posting.reporting_instance = ours.instance
    settings.posting.event_name_prefix = f"{names.MANAGER}-"
    # A finished job's timer deletes the job itself (TTL); kopf then waits for that very timer to
    # exit before it drops its finalizer, so check for the exit every second, not every minute.
    settings.background.cancellation_polling = 1.0
    settings.execution.max_workers = ours.workers
    global _kube
    _kube = Kube(load_config(), timeout=settings.networking.request_timeout or 30)
    if ours.metrics_port:
        metrics.serve(ours.metrics_port, ours.bind)


def _patch_status(namespace: str, name: str, current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """Write only what changed; an unchanged status costs no request."""
    change = diff(current, desired)
    if change:
        kube().patch(JOB_API, "ESENASJob", namespace, name, {"status": change}, sub="status")
    return change


def _invalid(body: Any, status: dict[str, Any], gen: int, message: str) -> None:
    """Fail the job for its spec (phase Failed, Failed=True InvalidSpec, a Warning); no retries."""
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    if _patch_status(ns, name, status, decide.invalid_status(status, gen, message, _now())):
        kopf.event(body, type="Warning", reason=INVALID_SPEC, message=message[:1000])
    metrics.ERRORS.inc()
    metrics.observe_job(ns, name, "Failed")
    raise kopf.PermanentError(f"invalid spec: {message}")


def _refuse_edit(body: Any, status: dict[str, Any], gen: int, message: str) -> None:
    """Refuse an invalid edit of a job whose fleet runs: nothing is applied, so the fleet keeps the
    last valid spec and the phase stays; Reconciled=False (InvalidSpec), status.reason and a Warning
    say why until a valid edit clears them. observedGeneration stays at the spec that runs."""
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    refused = _refused[(ns, name)] = decide.refusal(gen, message)
    text = refused[1]
    if _patch_status(ns, name, status, decide.refused_status(status, refused, _now())):
        kopf.event(body, type="Warning", reason=INVALID_SPEC, message=text[:1000])
    metrics.ERRORS.inc()
    raise kopf.PermanentError(f"invalid edit: {message}")


def _report_error(body: Any, status: Mapping[str, Any], exc: Exception, logger: Logger, reason: str = "ReconcileError") -> None:
    """A reconcile or status error reaches the job (Reconciled=False and a Warning), not only the log.

    The Event is posted when the condition changes, so a retry loop does not flood the namespace.
    """
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    message = api_message(exc) if isinstance(exc, ApiException) else f"{type(exc).__name__}: {exc}"
    gen = int(body["metadata"].get("generation") or 1)
    current = dict(status)
    desired = {"conditions": set_condition(current.get("conditions"), "Reconciled", False, reason, message[:4000], gen, _now())}
    try:
        changed = _patch_status(ns, name, current, desired)
    except Exception as again:  # the API server may be what fails: the Event may still get through
        logger.warning("cannot record the error in the status: %s", again)
        changed = {"conditions": True}
    if changed:
        kopf.event(body, type="Warning", reason=reason, message=message[:1000])


def reconcile(body: kopf.Body, meta: kopf.Meta, status: kopf.Status, logger: Logger, memo: kopf.Memo, **kwargs: Any) -> None:
    """Bring the children in line with the spec; a bad spec Fails the job once, without retries."""
    metrics.RECONCILES.inc()
    ns, name = meta["namespace"], meta["name"]
    gen = int(meta.get("generation") or 1)
    current = dict(status)
    phase = current.get("phase")
    if phase in TERMINAL and current.get("reason") != INVALID_SPEC:
        logger.info("job is %s; its fleet stays stopped", phase)
        return
    # A job whose children were applied from a valid spec keeps them through an invalid edit;
    # one that never ran fails for its spec.
    refuse = _refuse_edit if decide.ran(current) else _invalid
    try:
        job = validate_job(body)
    except SpecError as exc:
        refuse(body, current, gen, "; ".join(str(e) for e in exc.errors))
        return
    if decide.ran(current) and (why := claims.refusal(_applied.volume((ns, name), kwargs["workloads"].get((ns, name), [])), job)):
        refuse(body, current, gen, why)  # the checkpoint volume is made once (claims.py)
        return
    try:
        with _applied.applying((ns, name)):
            shards, changed = apply_children(kube(), body, job, _settings(memo), fresh=not decide.ran(current))
            _applied.record((ns, name), body, job, gen)
    except Refused as exc:
        refuse(body, current, gen, str(exc))
        return
    except Stale as exc:  # an earlier job's Secret or claim: retried until the garbage collector removes it
        _report_error(body, current, exc, logger, STALE_CHILD)
        raise kopf.TemporaryError(str(exc), delay=STALE_RETRY) from exc
    except Exception as exc:
        metrics.ERRORS.inc()
        _report_error(body, current, exc, logger)
        raise kopf.TemporaryError(f"reconcile failed: {exc}", delay=30) from exc
    new = decide.reconciled(current, job, shards, gen, _now())
    _refused.pop((ns, name), None)
    change = _patch_status(ns, name, current, new.desired)
    if new.warning is not None:
        kopf.event(body, type=new.warning.type, reason=new.warning.reason, message=new.warning.message)
    if job.spec.suspend and "phase" in change and job.spec.aggregator.checkpoint.storage_size is None:
        kopf.event(body, type="Warning", reason="NoCheckpointVolume",
                   message="suspended without spec.aggregator.checkpoint.storageSize: the checkpoint is on an "
                   "emptyDir that goes with the aggregator pod, so resuming starts from iteration 0")
    if "phase" in change and phase is not None:
        kopf.event(body, type="Normal", reason=new.phase, message=f"phase {phase} -> {new.phase}")
    elif changed:
        kopf.event(body, type="Normal", reason="Reconciled", message=", ".join(changed)[:1000])
    metrics.observe_job(ns, name, new.phase, desired=job.spec.workers.replicas)


def _pods(namespace: str, job: str, component: str, limit: int = 0) -> list[dict[str, Any]]:
    """The job's pods of ``component``: a single list, by label (at most ``limit`` when set)."""
    return kube().list("v1", "Pod", namespace, ",".join(f"{k}={v}" for k, v in names.selector(job, component).items()), limit)


def _store_result(body: kopf.Body, url: str, due: decide.ResultDue) -> dict[str, Any] | None:
    """The status.result document of the result stored, None when there is none."""
    if due == "partial":
        return results.store_partial(kube(), body, url)  # never raises: the failure is recorded anyway
    return results.store(kube(), body, url)  # raises: retried next tick, while the aggregator is up


def sync_status(body: kopf.Body, meta: kopf.Meta, status: kopf.Status, logger: Logger, memo: kopf.Memo, **kwargs: Any) -> None:
    """Mirror the aggregator's progress into .status; finish, fail or clean up the job.

    An error (the API server refusing a write, say) reaches the job as Reconciled=False and a
    Warning, then kopf tries again on the next tick.
    """
    try:
        _sync_status(body, meta, status, logger, kwargs["workloads"], kwargs["parts"], _settings(memo))
    except Exception as exc:
        metrics.ERRORS.inc()
        _report_error(body, status, exc, logger)
        raise


def _running_terms(body: kopf.Body, status: Mapping[str, Any], fleet: decide.Fleet) -> terms.Terms | None:
    """The terms of the spec the fleet runs: the job's own, or while an edit is refused the last
    applied spec's (this process's ledger, else the record an earlier process left: terms.py)."""
    key = (body["metadata"]["namespace"], body["metadata"]["name"])
    applied = _applied.job(key)
    try:
        own: terms.Terms | None = terms.of(validate_job(body))
    except SpecError:
        own = None
    before = terms.of(applied) if applied is not None else terms.recorded(fleet.aggregator.terms if fleet.aggregator else None, status)
    return terms.running(own, decide.edit_refused(status) or key in _refused, before)


def _repair(body: kopf.Body, index: kopf.Index[tuple[str, str], decide.Workload], parts: kopf.Index[tuple[str, str], str],
            settings: Settings) -> None:
    """Re-apply a live job's children when they drifted (drift.py): one Event."""
    key = (body["metadata"]["namespace"], body["metadata"]["name"])
    refused = _refused.get(key)
    gen = int(body["metadata"].get("generation") or 1)
    done = _applied.repair(kube(), key, index.get(key, []), parts.get(key, []), gen, refused[0] if refused else None, settings)
    if done is not None:
        metrics.REPAIRS.inc()
    if done is not None and done[2]:
        found, changed = done[0], ", ".join(done[1]) or "no change"
        kopf.event(body, type="Warning", reason=drift.REPAIRED, message=f"{'; '.join(found)}: re-applied the job's children ({changed})"[:1000])


def _sync_status(body: kopf.Body, meta: kopf.Meta, status: kopf.Status, logger: Logger,
                 index: kopf.Index[tuple[str, str], decide.Workload], parts: kopf.Index[tuple[str, str], str],
                 settings: Settings) -> None:
    ns, name = meta["namespace"], meta["name"]
    current = dict(status)
    phase = current.get("phase")
    now = _now()
    if phase in TERMINAL:
        ttl = (body.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl_expired(current, ttl, now) and kube().delete(JOB_API, "ESENASJob", ns, name):
            logger.info("deleted %ss after it finished (ttlSecondsAfterFinished)", ttl)
        return
    if phase is None:
        return  # not reconciled yet
    fleet = decide.Fleet.of(index.get((ns, name), []))
    running = _running_terms(body, current, fleet)
    if running is None:
        return  # the reconcile handler reports the spec
    # Fetch what the decisions need.
    url = settings.aggregator_url(name, ns)
    report: AggregatorReport | None = None
    if decide.reads_report(running):
        try:
            report = fetch_report(url)
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            logger.debug("aggregator status unavailable: %s", exc)
    restarts, last_message, stuck = int(current.get("aggregatorRestarts") or 0), "", None
    if fleet.aggregator_unready and fleet.aggregator is not None:  # its pods, for restarts or a failure to start
        pods = _pods(ns, name, "aggregator")
        restarts, last_message = restart_count(pods, restarts), termination_message(pods)
        stuck = starting.aggregator(pods, fleet.aggregator.stall, now, names.checkpoint_claim(name))
    # Decide.
    connected = report.workers_connected if report else None
    desired = decide.observed(running, fleet.ready, connected, fleet.shards, restarts, report)
    out = decide.outcome(running, current, report, restarts, last_message, now, stuck)
    # Write: the result before the fleet stops, then the status.
    if out.result is not None and (stored := _store_result(body, url, out.result)) is not None:
        desired["result"] = stored
    if out.finishes:
        for deployment in fleet.to_stop():
            kube().patch("apps/v1", "Deployment", ns, deployment, {"spec": {"replicas": 0}})
    gen = int(meta.get("generation") or 1)
    desired.update(decide.transition(current, out, gen, now, connected, fleet.shards))
    if desired.get("phase", phase) in ("Pending", "Running"):  # worker pods that cannot run (decide.worker_health)
        listed = _pods(ns, name, "worker", WORKER_PODS_LISTED) if fleet.workers_unready else None
        failing = None if listed is None else workers_failing(listed) or starting.workers(listed, [(w.name, w.stall) for w in fleet.workers], now)
        desired, workers_event = decide.worker_health(desired, current, failing, gen, now)
        if workers_event is not None:
            kopf.event(body, type=workers_event.type, reason=workers_event.reason, message=workers_event.message)
        desired = decide.no_workers(desired, current, running.replicas, name)
    if desired.get("phase", phase) not in TERMINAL:  # a finished job keeps its fleet stopped
        _repair(body, index, parts, settings)
    if out.event is not None:
        kopf.event(body, type=out.event.type, reason=out.event.reason, message=out.event.message)
    desired = decide.with_refusal(desired, current, _refused.get((ns, name)), now)
    _patch_status(ns, name, current, desired)
    metrics.observe_job(ns, name, desired.get("phase", phase), desired=running.replicas, ready=fleet.ready)


def forget(meta: kopf.Meta, **_: Any) -> None:
    """Children go by owner references; only the job's metric series are dropped here."""
    metrics.observe_job(meta["namespace"], meta["name"], None)
    _applied.forget((meta["namespace"], meta["name"]))
    _refused.pop((meta["namespace"], meta["name"]), None)


def registry(settings: Settings) -> kopf.OperatorRegistry:
    """The operator's handlers; the status timer ticks every ``settings.status_interval`` seconds."""
    r = kopf.OperatorRegistry()
    # A registry of our own has none of kopf's default logins: the kubeconfig or in-cluster
    # service account, through the kubernetes client, as the default registry would do.
    kopf.on.login(registry=r)(kopf.login_via_client)
    kopf.on.startup(registry=r)(configure)
    indices.register(r)
    kopf.on.resume(API_GROUP, VERSION, PLURAL, registry=r)(reconcile)
    kopf.on.create(API_GROUP, VERSION, PLURAL, registry=r)(reconcile)
    kopf.on.update(API_GROUP, VERSION, PLURAL, field="spec", registry=r)(reconcile)
    kopf.timer(API_GROUP, VERSION, PLURAL, interval=settings.status_interval, registry=r)(sync_status)
    kopf.on.delete(API_GROUP, VERSION, PLURAL, optional=True, registry=r)(forget)
    return r
