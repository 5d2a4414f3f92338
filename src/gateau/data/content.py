"""Content fingerprints of raw records: a stable hash of everything in the record, stored with its scored row.

A re-run skips a sample only when its stored content hash (and settings fingerprint) still match, and export
refuses a data file whose records no longer hash to what was scored.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def content_hash(record: dict[str, Any]) -> str:
    """16 hex digits of sha256 over the record's canonical JSON (sorted keys; non-ASCII and lone surrogates
    escaped, so any record hashes, including text that cannot be encoded as UTF-8)."""
    blob = json.dumps(record, sort_keys=True, ensure_ascii=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode("ascii")).hexdigest()[:16]
