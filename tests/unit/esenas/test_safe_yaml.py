"""Job files are read defensively: no aliases (billion laughs), bounded size, one-line errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from esenas.safe_yaml import MAX_BYTES, YamlFileError, load_yaml_file
from esenas.spec import SpecError, load_job

from tests.fakekube.harness import kubectl_binary

JOB = """\
apiVersion: esenas.dev/v1alpha1
kind: ESENASJob
metadata: {name: ok}
spec:
  environment: {id: InvertedPendulum-v5}
"""

# Nine levels of nine: 9**9 (387 million) strings once expanded; parsed, it is a few shared lists.
LAUGHS = "\n".join(
    ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
)


def _file(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "job.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_a_plain_job_loads(tmp_path: Path) -> None:
    assert load_yaml_file(_file(tmp_path, JOB))[0]["metadata"] == {"name": "ok"}
    assert load_job(_file(tmp_path, JOB)).spec.environment.id == "InvertedPendulum-v5"


def test_billion_laughs_is_refused_at_the_first_alias(tmp_path: Path) -> None:
    path = _file(tmp_path, JOB + LAUGHS + "\n")
    with pytest.raises(SpecError) as info:
        load_job(path)
    (err,) = info.value.errors
    assert err.path == str(path)
    assert err.reason == "invalid YAML at line 7, column 10: YAML aliases are not allowed in a job file"


def test_a_merge_key_is_an_alias_too(tmp_path: Path) -> None:
    text = JOB.replace("spec:\n", "base: &b {id: InvertedPendulum-v5}\nspec:\n").replace(
        "environment: {id: InvertedPendulum-v5}", "environment: {<<: *b}"
    )
    with pytest.raises(YamlFileError, match="aliases are not allowed"):
        load_yaml_file(_file(tmp_path, text))


def test_an_anchor_alone_is_harmless(tmp_path: Path) -> None:
    assert load_yaml_file(_file(tmp_path, JOB.replace("metadata: {name: ok}", "metadata: &m {name: ok}")))


def test_a_file_over_the_bound_is_refused_unread(tmp_path: Path) -> None:
    path = _file(tmp_path, JOB + "#" * MAX_BYTES + "\n")
    with pytest.raises(YamlFileError, match=r"^larger than 1 MiB; a job file is a few kilobytes$"):
        load_yaml_file(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not a YAML text file: byte 0 is not UTF-8"),
        (b"\x7fELF\x02\x01\x01\x00", "not a YAML text file: control character U+007F at character 0"),
        ("spec: {environment: [\n", "invalid YAML at line 2, column 1: expected the node content, but found '<stream end>'"),
        ("a: b: c\n", "invalid YAML at line 1, column 5: mapping values are not allowed here"),
        ("[" * 100_000, "invalid YAML: nested too deeply"),
    ],
)
def test_unreadable_files_say_why_in_one_line(tmp_path: Path, text: str | bytes, message: str) -> None:
    with pytest.raises(YamlFileError) as info:
        load_yaml_file(_file(tmp_path, text))
    assert str(info.value) == message


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(YamlFileError, match=r"^cannot read file: No such file or directory$"):
        load_yaml_file(tmp_path / "nope.yaml")


def test_a_2mb_file_and_a_spec_too_large_for_annotations_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_job(_file(tmp_path, JOB + "#" * (2 << 20) + "\n"))
    assert info.value.errors[0].reason == "larger than 1 MiB; a job file is a few kilobytes"
    values = [f"{i}" + "v" * 1000 for i in range(120)]  # node selector values: any text, any number of them
    terms = [{"matchExpressions": [{"key": "disk", "operator": "In", "values": values}]}]
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}
    big = JOB + f"  workers:\n    affinity: {json.dumps(affinity)}\n"  # JSON is YAML
    with pytest.raises(SpecError) as info:
        load_job(_file(tmp_path, big))
    (err,) = info.value.errors
    assert err.path == "spec" and "must be at most 98304 (96 KiB)" in err.reason


# Plain scalars where YAML 1.1 (PyYAML) and kubectl's go-yaml part ways, and some where they agree.
SCALARS = [
    "1e-2", "5e3", "1.0e+3", "-1E+2", ".5", "+.5", "10.0", "10", "0x1F", "010", "0o17", "1_000",
    "2026-12-05", "2026-12-05T10:00:00Z", "12:30", "1:30.5", "yes", "no", "y", "N", "on", "off",
    "true", "~", "null", "1e", "e3", "1.2.3", "0.1.0", "v1", "'1e3'", '"y"',
]


def test_plain_scalars_read_as_the_real_kubectl_reads_them(tmp_path: Path) -> None:
    """`kubectl apply -f` and `esenas run` take the same file; kubectl sends what it parsed as JSON."""
    fields = "".join(f"  f{i}: {s}\n" for i, s in enumerate(SCALARS))
    path = _file(tmp_path, "apiVersion: esenas.dev/v1alpha1\nkind: ESENASJob\nmetadata: {name: ok}\nspec:\n" + fields)
    out = subprocess.run(
        [kubectl_binary(), "label", "--local", "-f", str(path), "x=y", "-o", "json"],
        capture_output=True, text=True, check=True, timeout=60,
    )
    theirs = json.loads(out.stdout)["spec"]
    ours = load_yaml_file(path)[0]["spec"]
    assert [ours[f"f{i}"] for i in range(len(SCALARS))] == [theirs[f"f{i}"] for i in range(len(SCALARS))]
    assert ours["f0"] == 0.01 and ours["f12"] == "2026-12-05" and ours["f14"] == "12:30" and ours["f18"] is True


def test_a_whole_number_written_as_a_float_is_an_integer_field_s_value(tmp_path: Path) -> None:
    job = load_job(_file(tmp_path, JOB + "  es: {sigma: 5e-2, perturbations: 1e1, exactEvals: 4.0}\n"))
    assert (job.spec.es.sigma, job.spec.es.perturbations, job.spec.es.exact_evals) == (0.05, 10, 4)
    assert type(job.spec.es.perturbations) is int
    with pytest.raises(SpecError) as info:
        load_job(_file(tmp_path, JOB + "  es: {perturbations: 10.5}\n"))
    assert [(e.path, e.reason) for e in info.value.errors] == [("spec.es.perturbations", "must be an integer, got float 10.5")]
