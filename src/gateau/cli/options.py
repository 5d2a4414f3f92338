"""Options shared by several commands, and flags generated from typed dataclass fields.

A dataclass field carries its own flag: ``field(default=..., metadata={"help": ..., "choices": ...})``. The help
may name the field's default as ``{default}``, so a default is written once, in the dataclass. `add_field_flags`
turns such fields into flags whose parsed value is None when not given (the dataclass default then applies).
Imports only argparse and `gateau.config` (light) at top level; the method registry is imported when a parser
that needs it is built.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import MISSING, Field
from dataclasses import fields as dataclass_fields
from typing import Any

from ..config import FieldMap, SelectConfig
from ..data.turns import SHAPES


def default_of(section: type, name: str) -> Any:
    """The default of dataclass field ``name`` of ``section`` (for help texts; each default is written once)."""
    f = {f.name: f for f in dataclass_fields(section)}[name]
    return f.default_factory() if f.default is MISSING and f.default_factory is not MISSING else f.default


def number_text(value: float) -> str:
    """A number as help texts write it: ``2e-05`` -> ``2e-5``, ``2.0`` -> ``2``."""
    return re.sub(r"e([+-])0*(\d)", r"e\1\2", f"{value:g}")


def flag_name(name: str) -> str:
    """Field name -> flag: ``token_weight`` -> ``--token-weight``."""
    return "--" + name.replace("_", "-")


def add_field_flags(group: Any, fields: dict[str, Field] | list[Field]) -> None:
    """One flag per dataclass field: its help (and ``{default}``) and choices from the field's metadata; a bool
    field is a switch that stores True, any other field parses as the default's type (str with choices, int for
    a None default). Every flag's value is None when not given."""
    for f in fields.values() if isinstance(fields, dict) else fields:
        help_text = f.metadata.get("help", "")
        if "{default}" in help_text:
            help_text = help_text.replace("{default}", str(f.default))
        choices = f.metadata.get("choices")
        if isinstance(f.default, bool):
            group.add_argument(flag_name(f.name), action="store_const", const=True, help=help_text)
        else:
            kind = f.metadata.get("type") or (type(f.default) if f.default is not None else (str if choices else int))
            group.add_argument(flag_name(f.name), type=kind, choices=choices, help=help_text)


def field_values(args: argparse.Namespace, names: Any) -> dict[str, Any]:
    """The parsed values of the flags made for ``names`` (None where not given)."""
    return {name: getattr(args, name) for name in names}


# -- record fields (score, train) ------------------------------------------------------------------------------

def add_record_fields(p: argparse.ArgumentParser) -> None:
    """The record-shape flags of `gateau score` (and of select's data): `FieldMap` by flag."""
    g = p.add_argument_group("record fields (auto-detected unless given)")
    g.add_argument("--shape", choices=list(SHAPES), help="force a record shape")
    g.add_argument("--id-field", default=FieldMap.id_field, help="field holding the sample id (default: id, else "
                   "the position)")
    g.add_argument("--context-field", default=FieldMap.context, help="explicit shape: context field")
    g.add_argument("--instruction-field", default=FieldMap.instruction, help="explicit shape: instruction field")
    g.add_argument("--response-field", default=FieldMap.response, help="explicit shape: response field")
    g.add_argument("--splitter", default=FieldMap.splitter, help="chat shapes: the instruction is the user turn's "
                   "text after the last splitter (default: a blank line)")


def record_fields(args: argparse.Namespace) -> FieldMap:
    """The `FieldMap` of the record-field flags (``--splitter`` only where the parser has it)."""
    extra = {"splitter": args.splitter} if hasattr(args, "splitter") else {}
    return FieldMap(shape=args.shape, id_field=args.id_field, context=args.context_field,
                    instruction=args.instruction_field, response=args.response_field, **extra)


# -- the method and its options (select, inspect, report, report --also) -------------------------------------

def add_method_options(p: argparse.ArgumentParser) -> None:
    """``--method``, ``--preset`` and every method's options (flags from each method's Options dataclass)."""
    from ..methods import METHODS, all_option_fields, all_presets

    p.add_argument("--method", default=SelectConfig.method, help=f"{', '.join(METHODS)} (default "
                   f"{SelectConfig.method})")
    p.add_argument("--preset", choices=all_presets(), help="paper: the paper's equations (alpha 0.8); "
                   "paper-limited: the same at alpha 0.7 (the paper's limited-short-data setting); official: the "
                   "official rank script (min-max PPLs, raw CAS)")
    add_field_flags(p.add_argument_group("method options (each applies to the methods that declare it)"),
                    all_option_fields())


def method_options(args: argparse.Namespace) -> Any:
    """The chosen method's Options from --preset and the option flags given (a flag it does not take: error)."""
    from ..methods import all_option_fields
    from ..methods import method_options as options_of

    return options_of(args.method, args.preset, **field_values(args, all_option_fields()))


def select_config(args: argparse.Namespace) -> SelectConfig:
    """``--method``, ``--ratio``/``--count`` and the method's options -> `SelectConfig`."""
    return SelectConfig(method=args.method, ratio=args.ratio, count=args.count, options=method_options(args))

