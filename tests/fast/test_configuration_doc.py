"""docs/configuration.md is what Settings says: every setting, its default and its description (tools/config_doc.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from pydantic import Field

from tapescribe.config import Settings

TOOL = Path(__file__).resolve().parents[2] / "tools" / "config_doc.py"


def config_doc() -> ModuleType:
    spec = importlib.util.spec_from_file_location("config_doc", TOOL)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("config_doc", module)
    spec.loader.exec_module(module)
    return module


def test_configuration_doc_matches_the_settings():
    assert config_doc().differences() == []


def test_a_setting_added_without_the_doc_fails_the_check():
    """What a new setting does to the check until it is grouped and the doc is written again."""

    class WithANewSetting(Settings):
        new_knob: int = Field(3, description="Something new.")

    assert config_doc().differences(WithANewSetting) == [
        "new_knob is in no group of SETTING_GROUPS (setting_groups.py)"
    ]


def test_a_changed_default_or_description_fails_the_check():
    class Changed(Settings):
        port: int = Field(8001, description="Port the HTTP server listens on.")

    class Described(Settings):
        port: int = Field(8000, description="Another description.")

    tool = config_doc()
    assert tool.render(Changed) != tool.render() != tool.render(Described)
    assert tool.differences(Changed) and tool.differences(Described)


def test_the_api_key_is_held_as_a_secret(tmp_path):
    settings = Settings(data_dir=tmp_path, api_key="s3cret-key")
    assert "s3cret-key" not in repr(settings) and "s3cret-key" not in str(settings.model_dump())
    assert settings.api_key_value() == "s3cret-key"
    assert Settings(data_dir=tmp_path, api_key="").api_key_value() is None
    assert Settings(data_dir=tmp_path).api_key_value() is None
