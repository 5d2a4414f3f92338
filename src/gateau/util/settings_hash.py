"""One stable hash of a settings dict: the fingerprint of a run's measurements and of an evaluation's settings."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def settings_hash(settings: dict[str, Any]) -> str:
    """16 hex digits of SHA-256 over the settings as JSON (sorted keys; a non-JSON value by its ``str``)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
