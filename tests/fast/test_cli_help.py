"""`tapescribe serve --help` and `worker --help` name the defaults the settings really have."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from tapescribe.cli import serve, worker
from tapescribe.config import Settings


@pytest.mark.parametrize("command", [serve, worker], ids=["serve", "worker"])
def test_the_defaults_in_the_help_are_the_settings_defaults(command):
    checked = 0
    for param in command.params:
        said = re.search(r"\(default ([^,)]+)", getattr(param, "help", None) or "")
        if not said or param.name not in Settings.model_fields or param.default is not None:
            continue  # a flag with its own default (worker --workers 1) shows it with show_default
        default = Settings.model_fields[param.name].default
        expected = {"./data": "data"}.get(said.group(1).rstrip("."), said.group(1).rstrip("."))
        assert expected == str(default), f"--{param.name} says its default is {said.group(1)}, Settings has {default}"
        checked += 1
    assert checked >= 2


def test_serve_help_runs():
    result = CliRunner().invoke(serve, ["--help"])
    assert result.exit_code == 0 and "default auto" in result.output and "default 3" in result.output
