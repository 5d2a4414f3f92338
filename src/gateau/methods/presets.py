"""Named option presets shared by HMG, CAM and GATEAU (each method takes the fields it has)."""

from __future__ import annotations

from typing import Any, Mapping

PRESETS: Mapping[str, Mapping[str, Any]] = {
    # The paper's equations: softmax across the dataset at every level, softmax inside samples, T = 1, α = 0.8.
    "paper": dict(norm="softmax", temperature=1.0, segment_temperature=1.0, alpha=0.8, cas_outer=None,
                  is_norm="softmax", attn_norm="softmax", attn_sink_tokens=0, attn_calibration="none",
                  token_weight=0.0),
    # The paper's limited-short-data setting (only the first 10% of ShareGPT mixed in): the same equations, α = 0.7.
    "paper-limited": dict(norm="softmax", temperature=1.0, segment_temperature=1.0, alpha=0.7, cas_outer=None,
                          is_norm="softmax", attn_norm="softmax", attn_sink_tokens=0, attn_calibration="none",
                          token_weight=0.0),
    # The official rank script: min-max each PPL list, softmax of the difference, CAS used raw.
    "official": dict(norm="minmax-softmax", temperature=1.0, segment_temperature=1.0, alpha=0.8, cas_outer="raw",
                     is_norm="softmax", attn_norm="softmax", attn_sink_tokens=0, attn_calibration="none",
                     token_weight=0.0),
}
