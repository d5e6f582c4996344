"""The esenas command: bad specs give one line per bad field and exit code 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from esenas_cli.main import build_parser, main

BAD = """\
apiVersion: esenas.dev/v1alpha1
kind: ESENASJob
metadata: {name: bad}
spec:
  environment: {id: InvertedPendulum-v5}
  policy: {partitions: 0, template: cubic}
  es: {sigma: -1}
"""


def test_bad_spec_lists_every_field_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = tmp_path / "bad.yaml"
    job.write_text(BAD)
    assert main(["run", str(job)]) == 2
    err = capsys.readouterr().err
    assert "spec.policy.partitions: must be >= 1, got 0" in err
    assert "spec.policy.template: must be one of linear, mlp; got 'cubic'" in err
    assert "spec.es.sigma: must be > 0.0, got -1" in err
    assert "Traceback" not in err


def test_dimension_errors_need_the_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = tmp_path / "big.yaml"
    job.write_text(BAD.replace("{partitions: 0, template: cubic}", "{topology: partition, partitions: 99}").replace("{sigma: -1}", "{}"))
    assert main(["run", str(job)]) == 2
    assert "spec.policy.partitions: must be <= the number of weights (4)" in capsys.readouterr().err


def test_eval_of_a_missing_folder_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(tmp_path)]) == 2
    assert "cannot load a policy" in capsys.readouterr().err


def test_subcommands_are_registered() -> None:
    parser = build_parser()
    assert parser.parse_args(["run", "x.yaml", "--workers", "3"]).workers == 3
    assert parser.parse_args(["eval", "dir", "--episodes", "4"]).episodes == 4
