"""``gateau select RUN (--ratio R | --count K) [--out FILE]``: rank a scored run and export the top samples."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field, replace
from typing import Any

from ..config import SelectConfig
from .config_file import (ConfigFileError, SettingsFile, add_config_flags, file_settings, overlay, plain, typed_value,
                          yaml_text)
from .options import add_method_options


@dataclass(frozen=True)
class SelectSettings:
    """Every setting of one `gateau select` run, as its ``--config`` file holds them: the method, its ``preset``
    and ``options`` (the option flags' names, e.g. ``alpha``), how many to keep (``ratio`` or ``count``: exactly
    one), where to write the selection (``out``; None: the summary only), the ``data`` to export from (None: the
    run's) and ``allow_partial``."""

    method: str = SelectConfig.method
    preset: str | None = None
    ratio: float | None = None
    count: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    out: str | None = None
    data: str | None = None
    allow_partial: bool = False

    def select_config(self) -> SelectConfig:
        """The `SelectConfig` these settings rank by (a method option it does not take: error)."""
        from ..methods import method_options

        return SelectConfig(method=self.method, ratio=self.ratio, count=self.count,
                            options=method_options(self.method, self.preset, **self.options))


def _select_file() -> SettingsFile:
    """`gateau select`'s settings file; each method option flag sets ``options.NAME``."""
    from ..methods import all_option_fields

    flags = {name: name for name in ("method", "preset", "ratio", "count", "out", "data", "allow_partial")}
    flags.update({name: f"options.{name}" for name in all_option_fields()})
    return SettingsFile(SelectSettings, flags, free=("options",))


def register(subparsers: Any) -> None:
    """Add the ``select`` command."""
    p = subparsers.add_parser("select", help="rank a scored run and export the top samples (no model needed)")
    p.add_argument("run", help="run directory made by `gateau score`")
    amount = p.add_mutually_exclusive_group()
    amount.add_argument("--ratio", type=float, help="fraction of all samples to keep, e.g. 0.3; 1 = all, ranked "
                        "(one of --ratio and --count is needed, on the command line or in --config)")
    amount.add_argument("--count", type=int, help="number of samples to keep")
    p.add_argument("--out", help="JSONL file for the selected records (omit to only print the summary)")
    add_method_options(p)
    p.add_argument("--data", help="input file to export from (default: the path recorded in the run); it must hold "
                   "the records that were scored")
    p.add_argument("--allow-partial", action="store_true", help="rank an unfinished run's scored samples")
    add_config_flags(p, _select_file(), keys="SelectSettings (method, preset, ratio, count, options, out, data, "
                     "allow_partial)")
    p.set_defaults(handler=run)


def _options_checked(path: str, options: dict[str, Any]) -> dict[str, Any]:
    """A file's ``options`` mapping: each key a method option (as its flag parses it), each value of its type."""
    from ..methods import all_option_fields

    known = all_option_fields()
    unknown = sorted(set(options) - set(known), key=str)
    if unknown:
        raise ConfigFileError(f"{path}: unknown key 'options.{unknown[0]}'; valid keys of options: "
                              f"{', '.join(known)}")
    out = {}
    for name, value in options.items():
        f = known[name]
        kind = f.metadata.get("type") or (type(f.default) if f.default is not None else Any)
        out[name] = typed_value(path, f"options.{name}", value, kind | None if kind is not Any else Any)
    return out


def settings_from_args(args: argparse.Namespace) -> SelectSettings:
    """The flags over ``--config``'s file (when given) -> `SelectSettings`; ``--ratio``/``--count`` given on the
    command line replace both of the file's."""
    from ..methods import all_option_fields

    options = {name: getattr(args, name) for name in all_option_fields() if getattr(args, name) is not None}
    settings = SelectSettings(method=args.method, preset=args.preset, ratio=args.ratio, count=args.count,
                              options=options, out=args.out, data=args.data, allow_partial=args.allow_partial)
    from_file = file_settings(args)
    if from_file is None:
        return settings
    if args.ratio is not None or args.count is not None:  # the amount is one setting: the flag's replaces the file's
        from_file.pop("ratio", None)
        from_file.pop("count", None)
    if "options" in from_file:
        from_file["options"] = {**_options_checked(args.config, from_file["options"]), **options}
    return overlay(settings, from_file)


def run(args: argparse.Namespace) -> int:
    """Rank, print the summary, export the selection when --out is given."""
    settings = settings_from_args(args)
    if args.print_config:  # the method's options resolved (preset and defaults included)
        resolved = replace(settings, options=plain(settings.select_config().options))
        sys.stdout.write(yaml_text(plain(resolved)))
        return 0
    from ..select import export_jsonl, select

    selection = select(args.run, settings.select_config(), allow_partial=settings.allow_partial)
    print("\n".join(selection.summary_lines()))
    if settings.out:
        n = export_jsonl(selection, args.run, settings.out, data=settings.data)
        print(f"wrote {n} record{'' if n == 1 else 's'} to {settings.out}")
    return 0
