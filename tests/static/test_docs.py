"""User docs: the CRD reference is regenerated from the CRD (fails on drift), and every repository
path and chart value the docs mention exists, so the quickstart's commands stay real."""

from __future__ import annotations

import json
import re
import sys

import pytest
import yaml

from tests.static.chart_tools import CHART, REPO, run, tool

DOCS = ("quickstart.md", "operations.md", "observability.md")


def test_crd_reference_matches_the_crd() -> None:
    proc = run([sys.executable, str(REPO / "scripts" / "gen-crd-docs.py"), "--check"], check=False)
    assert proc.returncode == 0, proc.stderr


def test_crd_reference_documents_every_spec_field() -> None:
    crd = yaml.safe_load((CHART / "crds" / "esenasjobs.yaml").read_text())
    text = (REPO / "docs" / "crd-reference.md").read_text()
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    for group, node in spec["properties"].items():
        assert f"`spec.{group}`" in text
        for field in node.get("properties", {}):
            assert f"`spec.{group}.{field}`" in text


@pytest.mark.parametrize("doc", DOCS)
def test_paths_in_docs_exist(doc: str) -> None:
    text = (REPO / "docs" / doc).read_text()
    paths = set(re.findall(r"(?<![\w/.-])((?:manifests|helm|scripts|docs|operator|aggregator|worker_image|tests)/[\w./-]*[\w/])", text))
    assert paths, f"{doc} mentions no repository path"
    for path in paths:
        assert (REPO / path).exists(), f"docs/{doc} mentions {path}, which does not exist"


def _commands(text: str) -> list[str]:
    """Shell commands of the docs' bash blocks, continuation lines joined."""
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    return [c for b in blocks for c in b.replace("\\\n", " ").splitlines() if c.strip()]


@pytest.mark.parametrize("doc", DOCS)
def test_chart_values_in_docs_exist(doc: str) -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    ours = [c for c in _commands((REPO / "docs" / doc).read_text()) if "helm/esenas" in c]
    for command in ours:
        for key in re.findall(r"--set '?([A-Za-z.]+)=", command):
            node = schema
            for part in key.split("."):
                if "properties" not in node and isinstance(node.get("additionalProperties"), dict):
                    break  # a free-form map such as serviceMonitor.labels: any key is a value
                assert part in node.get("properties", {}), f"docs/{doc}: chart value {key} does not exist"
                node = node["properties"][part]
    if doc == "quickstart.md":
        assert any(c.startswith("helm install esenas helm/esenas") for c in ours)


def test_readme_links_the_docs() -> None:
    readme = (REPO / "README.md").read_text()
    for doc in (*DOCS, "crd-reference.md"):
        assert f"docs/{doc}" in readme, f"README.md does not link docs/{doc}"


def test_examples_in_docs_exist() -> None:
    text = "".join((REPO / "docs" / d).read_text() for d in DOCS)
    examples = re.findall(r"manifests/examples/([\w-]+\.yaml)", text)
    assert examples
    for example in examples:
        assert (REPO / "manifests" / "examples" / example).exists()


def test_chart_notes_point_at_the_release_tag() -> None:
    """NOTES.txt's URLs name files at the chart's own tag (never main, which may be ahead of the
    installed CRD), and those files exist."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    proc = run([tool("helm"), "install", "esenas", str(CHART), "-n", "esenas-system", "--dry-run=client"])
    notes = proc.stdout[proc.stdout.index("NOTES:"):]
    urls = re.findall(r"https://\S+", notes)
    assert len(urls) >= 2 and "/main/" not in notes
    prefix = chart["home"].replace("https://github.com/", "https://raw.githubusercontent.com/") + f"/v{chart['appVersion']}/"
    for url in urls:
        assert url.startswith(prefix), url
        assert (REPO / url.removeprefix(prefix)).exists(), url
    assert f"at tag v{chart['appVersion']}" in notes


def test_contracts_name_every_environment_variable_the_code_reads() -> None:
    text = (REPO / "docs" / "contracts.md").read_text()
    sources = [p for d in ("core", "aggregator", "worker_image", "operator") for p in (REPO / d).rglob("*.py")]
    names = {n for p in sources for n in re.findall(r'"(ESENAS_[A-Z0-9_]+)"', p.read_text())}
    # Set by `esenas run` for its own child processes, never by a user.
    names.discard("ESENAS_PARENT_PID")
    assert {"ESENAS_LOG_LEVEL", "ESENAS_OPERATOR_WORKERS", "ESENAS_JOB_SERVICEMONITOR_LABELS"} <= names
    missing = sorted(n for n in names if f"`{n}`" not in text)
    assert not missing, f"docs/contracts.md does not name {missing}"


@pytest.mark.parametrize("command", ["run", "eval", "fetch"])
def test_contracts_list_every_flag_of_the_local_commands(command: str) -> None:
    from esenas_cli.main import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    parser = sub.choices[command]  # type: ignore[index]
    flags = {o for a in parser._actions for o in a.option_strings if o.startswith("--") and o != "--help"}
    assert flags
    text = (REPO / "docs" / "contracts.md").read_text()
    (row,) = [line for line in text.splitlines() if line.startswith("|") and f"`esenas {command} " in line]
    missing = sorted(f for f in flags if f not in row)
    assert not missing, f"docs/contracts.md: `esenas {command}` row lacks {missing}"
