"""CAM's calibrated attention profile: the neutral response's row against eager attention, its cost (one extra
attention row, only when asked for), the fingerprint, and calibrated CAS against hand computations."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from gateau.config import NEUTRAL_RESPONSE, ScoreConfig
from gateau.data import Sample
from gateau.methods import method_options
from gateau.methods.cam import CAM
from gateau.models import LoadedModel
from gateau.pipeline.scorer import Scorer, measurement_fields
from gateau.prompt import PromptEncoder
from naive import response_attention as naive_attention

CONTEXT = " ".join(f"The harbour of town {i} shelters {i * 7 % 50} boats and keeps a blue lighthouse." for i in range(9))
SAMPLE = Sample(index=0, id="s", context=CONTEXT, instruction="How many boats does town 3 shelter?",
                response="Town 3 shelters 21 boats.")
SEG = 24


def _config(neutral: str | None) -> ScoreConfig:
    return ScoreConfig.from_flat(data="-", out="-", methods="gateau", max_length=2048, segment_len=SEG,
                                 short_window=16, token_budget=256, progress=False, neutral_response=neutral)


@pytest.fixture(scope="module")
def models(tiny_tokenizer, tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    eager = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    return LoadedModel(model=model, tokenizer=tiny_tokenizer, spec="tiny", device=torch.device("cpu")), eager


def test_neutral_profile_equals_eager_attention_of_the_content_free_row(models, tiny_tokenizer):
    lm, eager = models
    plain, calibrated = Scorer(_config(None), lm), Scorer(_config(NEUTRAL_RESPONSE), lm)
    row_plain, row = plain.score_batch([SAMPLE])[0], calibrated.score_batch([SAMPLE])[0]
    encoder = PromptEncoder(tiny_tokenizer, "plain", 2048)
    enc = encoder.encode(SAMPLE)
    neutral = encoder.encode(replace(SAMPLE, response=NEUTRAL_RESPONSE)).response
    ids = enc.head + enc.context + enc.middle + neutral
    mass = naive_attention(eager, ids, len(ids) - len(neutral))
    ctx = mass[len(enc.head): len(enc.head) + len(enc.context)]
    spans = enc.segments(SEG)
    np.testing.assert_allclose(row["seg_attn_neutral"], [ctx[s:e].mean() for s, e in spans], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(row["attn_head_neutral"], ctx[:16], rtol=1e-5, atol=1e-8)
    # the real profile is unchanged, and the neutral one differs from it
    np.testing.assert_allclose(row["seg_attn"], row_plain["seg_attn"], rtol=1e-6)
    assert not np.allclose(row["seg_attn"], row["seg_attn_neutral"], rtol=1e-3)
    # the cost: exactly one more row (the neutral one), and nothing without the setting
    assert row_plain["seg_attn_neutral"] is None and row_plain["attn_head_neutral"] is None
    assert calibrated.forward_tokens - plain.forward_tokens == len(ids)


def test_fingerprint_changes_only_when_calibrating():
    without = measurement_fields(_config(None))
    assert "neutral_response" not in without  # runs that do not calibrate keep their earlier fingerprint
    assert measurement_fields(_config(NEUTRAL_RESPONSE))["neutral_response"] == NEUTRAL_RESPONSE
    assert measurement_fields(_config("N/A")) != measurement_fields(_config(NEUTRAL_RESPONSE))
    with pytest.raises(ValueError, match="empty"):
        _config("  ")


def _sm(v) -> np.ndarray:
    e = np.exp(np.asarray(v, dtype=np.float64) - np.max(v))
    return e / e.sum()


def _zs(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return (v - v.mean()) / v.std()


def _cos(a, b) -> float:
    return float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))


TABLE = {  # two samples with a neutral profile, one without (CAS defined, calibration not)
    "seg_nll": [np.log([3.0, 5.0, 4.0]).tolist(), np.log([2.0, 2.5]).tolist(), np.log([1.0, 2.0]).tolist()],
    "seg_attn": [[0.5, 0.2, 0.3], [0.1, 0.9], [0.4, 0.6]],
    "seg_tokens": [[4, 4, 4], [4, 4], [4, 4]],
    "attn_head": [[0.8, 0.4, 0.5, 0.3], [0.1] * 4, [0.4] * 4],
    "seg_attn_neutral": [[0.4, 0.1, 0.5], [0.2, 0.6], None],
    "attn_head_neutral": [[1.0, 0.2, 0.2, 0.2], [0.2] * 4, None],
}


def test_calibrated_cas_by_hand():
    divide = CAM().score(TABLE, method_options("cam", attn_calibration="divide", attn_norm="sum"))
    a = np.array([0.5, 0.2, 0.3]) / np.array([0.4, 0.1, 0.5])
    assert divide[0] == pytest.approx(_cos(_sm([3.0, 5.0, 4.0]), a / a.sum()), abs=1e-12)
    b = np.array([0.1, 0.9]) / np.array([0.2, 0.6])
    assert divide[1] == pytest.approx(_cos(_sm([2.0, 2.5]), b / b.sum()), abs=1e-12)
    assert np.isnan(divide[2])  # no neutral profile: undefined under calibration
    subtract = CAM().score(TABLE, method_options("cam", attn_calibration="subtract", attn_norm="zscore"))
    assert subtract[0] == pytest.approx(_cos(_sm([3.0, 5.0, 4.0]), _zs([0.1, 0.1, -0.2])), abs=1e-12)
    # sink tokens leave both profiles: segment 0's mean without its first 2 tokens
    sink = CAM().score(TABLE, method_options("cam", attn_calibration="divide", attn_norm="softmax",
                                             attn_sink_tokens=2))
    real0 = (0.5 * 4 - 0.8 - 0.4) / 2
    neutral0 = (0.4 * 4 - 1.0 - 0.2) / 2
    assert sink[0] == pytest.approx(_cos(_sm([3.0, 5.0, 4.0]), _sm([real0 / neutral0, 2.0, 0.6])), abs=1e-12)
    # without calibration every sample is scored, as before
    assert np.isfinite(CAM().score(TABLE, method_options("cam"))).all()


def test_calibration_needs_the_neutral_profile_and_a_fitting_norm():
    table = {**TABLE, "seg_attn_neutral": [None] * 3}
    with pytest.raises(ValueError, match="--calibrate-attention"):
        CAM().score(table, method_options("cam", attn_calibration="divide"))
    with pytest.raises(ValueError, match="subtract"):
        method_options("cam", attn_calibration="subtract", attn_norm="sum")
    with pytest.raises(ValueError, match="--attn-calibration"):
        method_options("gateau", attn_calibration="scale")
