"""``--config FILE.yaml|.json`` and ``--print-config`` of every command that takes a settings file.

A command names its typed config once, as a `SettingsFile`: the dataclass whose fields the file's keys mirror
(nested dataclasses are nested mappings, as in ``RUN/config.json``), which flag sets which key, and the keys a
file never holds. The rules are the same everywhere:

- any key may be left out; an unknown key is an error naming it and the valid ones; a value of the wrong type is
  an error naming the key and the type it must have (`ConfigFileError`: one line, exit 2);
- a flag given on the command line overrides the file (positional arguments and required flags always do);
  a flag is "given" when it is on the command line, even with its default value;
- ``--print-config`` writes the resolved settings in the form ``--config`` reads back (``score``: JSON, the
  keys of ``RUN/config.json``; the other commands: YAML) and exits without running.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError


class ConfigFileError(UsageError):
    """A settings file that cannot be read or holds keys or values the configs do not have."""


@dataclass(frozen=True)
class SettingsFile:
    """How one command's settings file maps onto its typed config.

    ``schema``: the dataclass the file's keys mirror. ``flags``: argparse destination -> the dotted key it sets
    (``data.fields.id_field``); a flag given on the command line keeps the file from setting that key.
    ``omit``: dotted keys a file never holds (internal or resolved per machine). ``free``: dotted keys whose value
    is a mapping checked elsewhere (e.g. a method's options). ``sections``: top-level keys that are not fields of
    ``schema`` -> the dataclass their mapping mirrors (e.g. an evaluation's ``judge``); the command reads them out
    of the checked settings before `overlay`. ``record``: the key under which a stored record of the command
    keeps its settings (a run's ``config.json`` keeps them under ``config``, beside its fingerprint); such a file is
    read as those settings.
    """

    schema: type
    flags: Mapping[str, str] = field(default_factory=dict)
    omit: tuple[str, ...] = ()
    free: tuple[str, ...] = ()
    sections: Mapping[str, type] = field(default_factory=dict)
    record: str | None = None


_UNSET: Any = object()


def add_config_flags(p: argparse.ArgumentParser, spec: SettingsFile, *, keys: str, printed: str = "YAML") -> None:
    """``--config FILE`` and ``--print-config`` on parser ``p`` (``keys``: what the file holds, for the help)."""
    p.add_argument("--config", metavar="FILE", help=f"settings file (.yaml/.yml or .json) with the keys of {keys}; "
                   "flags given on the command line override it; an unknown key is an error")
    p.add_argument("--print-config", action="store_true", help=f"print the resolved settings as {printed} (a file "
                   "--config reads) and exit without running")
    p.set_defaults(settings_file=spec, settings_parser=p)


# -- reading and checking -------------------------------------------------------------------------------------

def _load(path: str) -> Any:
    """The parsed file: YAML for .yaml/.yml, JSON otherwise."""
    text = Path(path).read_text(encoding="utf-8")  # a missing file: main's OSError line names it
    if Path(path).suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigFileError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigFileError(f"{path}: not valid JSON: {exc}") from None


def _hints(schema: type) -> dict[str, Any]:
    """Field name -> resolved type annotation of dataclass ``schema``."""
    return typing.get_type_hints(schema)


def _dataclass_in(hint: Any) -> type | None:
    """The dataclass a field's annotation names (also inside ``X | None``), else None."""
    if dataclasses.is_dataclass(hint):
        return hint
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        found = [a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)]
        return found[0] if found else None
    return None


def _type_name(hint: Any) -> str:
    """An annotation in the user's words: ``int or null``, ``a list of int``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in args)
    if origin is tuple:
        return f"a list of {_type_name(args[0])}"
    if dataclasses.is_dataclass(hint):
        return "a mapping"
    return getattr(hint, "__name__", str(hint))


def _typed(value: Any, hint: Any) -> Any:
    """``value`` as annotation ``hint`` wants it (lists -> tuples, ints -> floats); ValueError when it cannot be."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arm in (a for a in args if a is not type(None)):
            try:
                return _typed(value, arm)
            except ValueError:
                continue
        raise ValueError
    if hint is tuple and isinstance(value, (list, tuple)):
        return tuple(value)
    if origin is tuple and isinstance(value, (list, tuple)):
        item = args[0] if args else Any
        return tuple(_typed(v, item) for v in value)
    if origin in (dict, Mapping) and isinstance(value, dict):
        return dict(value)
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is str and isinstance(value, str):
        return value
    raise ValueError


def _checked(path: str, schema: type, given: Any, prefix: str, spec: SettingsFile) -> dict[str, Any]:
    """``given`` (the mapping at dotted ``prefix``) checked against ``schema``: unknown keys and wrong types are
    `ConfigFileError`s; values converted to the fields' types; nested dataclasses checked in turn."""
    where = prefix.rstrip(".")
    if not isinstance(given, dict):
        raise ConfigFileError(f"{path}: {where or 'the settings'} must be a mapping of keys to values")
    sections = {} if prefix else dict(spec.sections)
    hints = {**_hints(schema), **sections}
    names = [f.name for f in dataclasses.fields(schema) if prefix + f.name not in spec.omit] + list(sections)
    valid = sorted(names, key=lambda name: _dataclass_in(hints[name]) is None)  # sections first, in field order
    unknown = sorted(set(given) - set(valid), key=str)
    if unknown:
        of = f" of {where}" if where else ""
        raise ConfigFileError(f"{path}: unknown key {prefix + str(unknown[0])!r}; valid keys{of}: {', '.join(valid)}")
    out: dict[str, Any] = {}
    for key, value in given.items():
        nested = _dataclass_in(hints[key])
        if nested is not None and isinstance(value, dict):
            out[key] = _checked(path, nested, value, f"{prefix}{key}.", spec)
            continue
        if prefix + key in spec.free:
            if not isinstance(value, dict):
                raise ConfigFileError(f"{path}: {prefix + key} must be a mapping")
            out[key] = dict(value)
            continue
        out[key] = typed_value(path, prefix + key, value, hints[key])
    return out


def typed_value(path: str, key: str, value: Any, hint: Any) -> Any:
    """``value`` of dotted ``key`` in file ``path`` as annotation ``hint`` wants it; `ConfigFileError` naming the
    key and the type when it is not one."""
    try:
        return _typed(value, hint)
    except ValueError:
        raise ConfigFileError(f"{path}: {key} must be {_type_name(hint)}, got {json.dumps(value, default=str)}") \
            from None


def read_settings(path: str, spec: SettingsFile) -> dict[str, Any]:
    """The file ``path`` (YAML or JSON by its suffix) as a nested dict checked against ``spec.schema`` ({} for an
    empty file)."""
    payload = _load(path)
    if spec.record and isinstance(payload, dict) and isinstance(payload.get(spec.record), dict) \
            and "fingerprint" in payload:
        payload = payload[spec.record]  # a stored run's config.json: its settings
    return {} if payload is None else _checked(path, spec.schema, payload, "", spec)


# -- flags over the file ----------------------------------------------------------------------------------------

def given_on_command_line(args: argparse.Namespace) -> set[str]:
    """The argparse destinations of the command's flags that are on its command line (``args.argv``), even with
    their default value: the command's arguments parsed again with every default replaced by a marker."""
    parser: argparse.ArgumentParser = args.settings_parser
    words = len(parser.prog.split()) - 1  # "gateau eval needle" -> the command words before its own arguments
    saved = [(action, action.default) for action in parser._actions]  # argparse has no public accessor
    try:
        for action, _ in saved:
            action.default = _UNSET
        parsed = parser.parse_args(args.argv[words:])
    finally:
        for action, default in saved:
            action.default = default
    return {dest for dest, value in vars(parsed).items() if value is not _UNSET}


def file_settings(args: argparse.Namespace) -> dict[str, Any] | None:
    """The command's ``--config`` file, checked, without the keys its given flags set (None without --config)."""
    if not getattr(args, "config", None):
        return None
    spec: SettingsFile = args.settings_file
    settings = read_settings(args.config, spec)
    for dest in given_on_command_line(args):
        key = spec.flags.get(dest)
        if key is not None:
            _drop(settings, key.split("."))
    return settings


def _drop(settings: dict[str, Any], keys: list[str]) -> None:
    """Remove the dotted key ``keys`` from nested ``settings`` (absent: nothing)."""
    for key in keys[:-1]:
        settings = settings.get(key)
        if not isinstance(settings, dict):
            return
    settings.pop(keys[-1], None)


def overlay(config: Any, settings: Mapping[str, Any]) -> Any:
    """Dataclass ``config`` with the values of nested ``settings`` (checked by `read_settings`) in place of its
    own; a nested mapping replaces only the keys it holds."""
    changes: dict[str, Any] = {}
    hints = _hints(type(config))
    for key, value in settings.items():
        nested = _dataclass_in(hints[key])
        if nested is not None and isinstance(value, Mapping):
            current = getattr(config, key)
            changes[key] = overlay(current if current is not None else nested(), value)
        else:
            changes[key] = value
    return dataclasses.replace(config, **changes) if changes else config


# -- writing ----------------------------------------------------------------------------------------------------

def plain(value: Any, spec: SettingsFile | None = None, prefix: str = "") -> Any:
    """A config (or part of one) as plain mappings and lists, without ``spec.omit``'s keys."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name), spec, f"{prefix}{f.name}.") for f in dataclasses.fields(value)
                if spec is None or prefix + f.name not in spec.omit}
    if isinstance(value, Mapping):
        return {k: plain(v, spec, f"{prefix}{k}.") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def yaml_text(settings: Mapping[str, Any]) -> str:
    """Settings as the YAML ``--config`` reads back (keys in the config's field order)."""
    import yaml

    return yaml.safe_dump(dict(settings), sort_keys=False, allow_unicode=True, width=120)


def settings_text(config: Any) -> str:
    """A `ScoreConfig` as the JSON that ``--config`` reads back (the same keys as ``RUN/config.json``)."""
    return json.dumps(config.to_dict(), indent=2) + "\n"
