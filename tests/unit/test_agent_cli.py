"""overlay-agent's command line: the token file (an empty one is an error, as on the master), the
CNI directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from overlay_agent.cli import main, settings
from overlay_agent.errors import ConfigError

pytestmark = pytest.mark.unit

BASE = ["--masters", "http://127.0.0.1:1", "--ip", "192.0.2.11"]


def test_token_file_is_read_and_stripped(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    cfg, _ = settings([*BASE, "--token-file", str(token)])
    assert cfg.token == "s3cret"
    assert settings(BASE)[0].token is None


def test_empty_token_file_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "token"
    empty.write_text(" \n")
    with pytest.raises(ConfigError, match=r"--token-file: .*token is empty"):
        settings([*BASE, "--token-file", str(empty)])
    assert main([*BASE, "--token-file", str(empty)]) == 2
    assert "is empty" in capsys.readouterr().out


def test_unreadable_token_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--token-file"):
        settings([*BASE, "--token-file", str(tmp_path / "missing")])


def test_mesos_cni_dir_is_a_second_directory(tmp_path: Path) -> None:
    cfg, _ = settings([*BASE, "--cni-dir", str(tmp_path / "cni"), "--mesos-cni-dir", str(tmp_path)])
    assert (cfg.agent.cni_dir, cfg.agent.mesos_cni_dir) == (tmp_path / "cni", tmp_path)
    with pytest.raises(ConfigError, match="--mesos-cni-dir must be another directory"):
        settings([*BASE, "--cni-dir", str(tmp_path), "--mesos-cni-dir", f"{tmp_path}/x/.."])
