"""Bad flags of ``esenas relay`` and the aggregator's ``--max-lease-items``: one line naming the flag, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from esenas_aggregator import cli, relay_cli

JOB = Path(__file__).resolve().parents[3] / "manifests/examples/inverted-pendulum.yaml"


@pytest.fixture
def token(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("a-token")
    return path


def test_a_relay_without_its_upstream_names_what_is_missing(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ESENAS_UPSTREAM", "ESENAS_JOB_FILE", "ESENAS_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    assert relay_cli.run([]) == 2
    assert "missing --upstream, --job, --token-file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--lease-items", "-1"], "--lease-items: must be >= 0 (0: the default), got -1"),
        (["--tls-cert-file", "/nonexistent.pem"], "--tls-cert-file and --tls-key-file go together"),
        (["--tls-ca-file", "/nonexistent/ca.pem"], "--tls-ca-file"),
    ],
)
def test_bad_relay_flags_are_one_line_naming_the_flag(
    flags: list[str], message: str, token: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = relay_cli.run(["--upstream", "127.0.0.1:1", "--job", str(JOB), "--token-file", str(token), *flags])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("esenas relay: ") and message in err and err.count("\n") == 1


def test_a_negative_max_lease_items_is_refused_before_the_aggregator_starts(
    token: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.run([
        "--job", str(JOB), "--checkpoint-dir", str(tmp_path / "ckpt"), "--token-file", str(token), "--max-lease-items", "-5",
    ])
    assert code == 2
    assert "--max-lease-items: must be >= 0 (0: the job's workers.batchSize), got -5" in capsys.readouterr().err
    assert not (tmp_path / "ckpt").exists()
