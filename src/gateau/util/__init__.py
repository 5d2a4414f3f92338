"""Small utilities with one home each: atomic writes, data-wheel files, settings hashes, line-numbered JSONL."""
