"""A real `kopf run --standalone` process against the fake API server: finalizer added with
a JSON patch, create/update/delete handlers, status patched through /status, events posted."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from tests.fakekube.harness import FakeKube
from tests.integration.fakekube.crds import WIDGET_CRD, dump, widget

HANDLERS = textwrap.dedent('''
    """Tiny kopf operator for the fake API server test."""
    import os
    import kopf

    LOG = os.environ["WIDGET_LOG"]

    def note(text):
        with open(LOG, "a") as f:
            f.write(text + "\\n")

    @kopf.on.startup()
    def configure(settings, **_):
        settings.persistence.finalizer = "fake.test/widget-finalizer"
        settings.watching.server_timeout = 20

    @kopf.on.create("fake.test", "v1", "widgets")
    def created(body, spec, name, patch, **_):
        note(f"create {name} {spec['size']}")
        kopf.info(body, reason="Created", message=f"widget {name} has {spec['size']} parts")
        patch.status["phase"] = "Created"
        patch.status["size"] = spec["size"]

    @kopf.on.update("fake.test", "v1", "widgets")
    def updated(spec, name, patch, **_):
        note(f"update {name} {spec['size']}")
        patch.status["size"] = spec["size"]

    @kopf.on.delete("fake.test", "v1", "widgets")
    def deleted(name, **_):
        note(f"delete {name}")
''')


def _start_kopf(fakekube: FakeKube, tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    handlers = tmp_path / "widget_handlers.py"
    handlers.write_text(HANDLERS)
    log = tmp_path / "widget.log"
    log.touch()
    out = (tmp_path / "kopf.out").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kopf", "run", "--standalone", "--all-namespaces", str(handlers)],
        env={**fakekube.env(), "WIDGET_LOG": str(log)}, stdout=out, stderr=subprocess.STDOUT,
    )
    return proc, log


def _widget(fakekube: FakeKube, name: str) -> Any:
    return fakekube.client.get(f"/apis/fake.test/v1/namespaces/default/widgets/{name}")


def test_kopf_operator_handles_create_update_delete(
    fakekube_factory: Any, tmp_path: Path
) -> None:
    fakekube: FakeKube = fakekube_factory("--access-log")
    fakekube.kubectl("apply", "-f", "-", input=dump(WIDGET_CRD))
    proc, log = _start_kopf(fakekube, tmp_path)
    try:
        fakekube.kubectl("apply", "-f", "-", input=dump(widget("w1", size=1)))

        def handled() -> Any:
            obj = _widget(fakekube, "w1")
            return obj if (obj.get("status") or {}).get("phase") == "Created" else None

        obj = fakekube.wait_for(handled, timeout=30)
        assert "fake.test/widget-finalizer" in obj["metadata"]["finalizers"]
        assert obj["status"]["size"] == 1
        assert obj["metadata"]["generation"] == 1, "status writes must not bump generation"
        assert any(k.startswith("kopf.zalando.org/") for k in obj["metadata"]["annotations"])

        fakekube.kubectl("patch", "widget", "w1", "--type", "merge", "-p", '{"spec":{"size":2}}')
        fakekube.wait_for(lambda: _widget(fakekube, "w1")["status"].get("size") == 2, timeout=30)
        assert _widget(fakekube, "w1")["metadata"]["generation"] == 2

        # kubectl waits for the finalizer to go, which needs kopf's delete handler.
        fakekube.kubectl("delete", "widget", "w1", "--timeout=30s")
        assert fakekube.kubectl("get", "widget", "w1", check=False).returncode != 0
        lines = log.read_text().splitlines()
        assert lines == ["create w1 1", "update w1 2", "delete w1"], lines

        def posted() -> Any:
            events = fakekube.client.list("/api/v1/namespaces/default/events",
                                          fieldSelector="involvedObject.name=w1")
            return [e for e in events if e["reason"] == "Created"]

        event = fakekube.wait_for(posted, timeout=10)[0]
        assert event["message"] == "widget w1 has 1 parts"
        assert event["metadata"]["name"].startswith("kopf-event-")  # generateName
        stats = fakekube.client.stats()
        assert stats["writes"]["patch"]["fake.test/widgets"] >= 2  # finalizer and state
        assert stats["writes"]["patch"]["fake.test/widgets/status"] >= 1
        assert proc.poll() is None, "the operator keeps running"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    output = (tmp_path / "kopf.out").read_text()
    assert "Traceback" not in output, output[-4000:]
