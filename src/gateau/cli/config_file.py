"""``--config FILE.yaml|.json`` and ``--print-config`` of `gateau score`: the settings as a file.

The file's keys mirror `ScoreConfig.to_dict` (what ``RUN/config.json`` holds): ``data`` (``path``, ``fields``,
``limit``), ``models``, ``measure``, ``execution``, ``out``, ``overwrite``, ``repair``; any part may be left out.
Flags given on the command line override the file (DATA and --out always do); an unknown key is an error naming
it and the valid ones.
"""

from __future__ import annotations

import json
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

from ..config import DataConfig, ExecutionConfig, FieldMap, MeasureConfig, ModelConfig, ScoreConfig
from ..errors import UsageError

_SECTIONS: dict[str, type] = {"data": DataConfig, "models": ModelConfig, "measure": MeasureConfig,
                              "execution": ExecutionConfig}
_TOP_LEVEL = ("out", "overwrite", "repair")


class ConfigFileError(UsageError):
    """A settings file that cannot be read or holds keys the configs do not have."""


def _check_keys(section: str, given: dict[str, Any], valid: list[str], path: str) -> None:
    """ConfigFileError naming the first key of ``given`` (in ``section``, dotted; "" = the top) not in ``valid``."""
    unknown = sorted(set(given) - set(valid))
    if unknown:
        where = f" of {section}" if section else ""
        key = f"{section}.{unknown[0]}" if section else unknown[0]
        raise ConfigFileError(f"{path}: unknown key {key!r}; valid keys{where}: {', '.join(valid)}")


def read_settings(path: str) -> dict[str, Any]:
    """The file ``path`` (YAML or JSON by its suffix) as a dict of checked sections."""
    text = Path(path).read_text(encoding="utf-8")
    if Path(path).suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            payload = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigFileError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    else:
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigFileError(f"{path}: not valid JSON: {exc}") from None
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise ConfigFileError(f"{path}: the settings must be a mapping of sections (data, models, measure, "
                              "execution)")
    _check_keys("", payload, [*_SECTIONS, *_TOP_LEVEL], path)
    for name, section in _SECTIONS.items():
        part = payload.get(name) or {}
        if not isinstance(part, dict):
            raise ConfigFileError(f"{path}: {name} must be a mapping")
        _check_keys(name, part, [f.name for f in dataclass_fields(section)], path)
        if name == "data":
            _check_keys("data.fields", part.get("fields") or {}, [f.name for f in dataclass_fields(FieldMap)], path)
    return payload


def merged(from_flags: ScoreConfig, given: set[str], settings: dict[str, Any]) -> ScoreConfig:
    """``from_flags`` with every setting the user did not give on the command line taken from ``settings``.
    ``given``: the flat names of the fields set by flags (field names; ``fields.NAME`` for record fields)."""
    payload = from_flags.to_dict()
    for name in _SECTIONS:
        for key, value in (settings.get(name) or {}).items():
            if key == "fields":
                for fkey, fvalue in (value or {}).items():
                    if f"fields.{fkey}" not in given:
                        payload["data"]["fields"][fkey] = fvalue
            elif key != "path" and key not in given:
                payload[name][key] = value
    for key in ("overwrite", "repair"):
        if key in settings and key not in given:
            payload[key] = settings[key]
    return ScoreConfig.from_dict(payload)


def settings_text(config: ScoreConfig) -> str:
    """The resolved settings as the JSON that ``--config`` reads back (the same keys as ``RUN/config.json``)."""
    return json.dumps(config.to_dict(), indent=2) + "\n"
