"""Loading the network config: files, YAML, and the embedded default (the I/O side of ``network``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from overlay_master.errors import ConfigError, ConfigProblem
from overlay_master.network import NetworkConfig
from overlay_master.validation import parse_network


def load_network(path: str | Path) -> NetworkConfig:
    """Read and validate a YAML (or JSON) network config file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(
            [ConfigProblem("file", str(path), f"cannot be read: {e.strerror}")]
        ) from e
    return parse_text(text, source=str(path))


def default_network() -> NetworkConfig:
    """The embedded default: the DC/OS seed config (``dcos`` 9.0.0.0/8 in /26 blocks)."""
    text = resources.files("overlay_master").joinpath("default-config.yaml").read_text("utf-8")
    return parse_text(text, source="embedded default config")


def default_config_text() -> str:
    return resources.files("overlay_master").joinpath("default-config.yaml").read_text("utf-8")


def parse_text(text: str, source: str = "network config") -> NetworkConfig:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError([ConfigProblem("file", source, f"is not valid YAML: {e}")], source) from e
    return parse_network(document, source=source)
