"""manifests/ is generated from the chart: regenerate and fail on any drift."""

from __future__ import annotations

from tests.static.chart_tools import REPO, run, tool


def test_manifests_match_the_chart() -> None:
    proc = run([str(REPO / "scripts" / "gen-manifests.sh"), "--check"], check=False,
               env={"HELM": tool("helm")})
    assert proc.returncode == 0, proc.stderr


def test_crd_is_installed_with_the_operator() -> None:
    install = (REPO / "manifests" / "install.yaml").read_text()
    assert "kind: CustomResourceDefinition" in install and "name: esenasjobs.esenas.dev" in install
