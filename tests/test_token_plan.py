"""`gateau plan`: its token counts equal the model tokens `gateau score` then records in history.jsonl, for several
method sets, both modes, packing and the calibration row; its per-kind rows against rows counted by hand."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from gateau.cli import main
from gateau.config import ScoreConfig
from gateau.pipeline.token_plan import plan_tokens
from gateau.prompt import PromptEncoder
from gateau.store import RunStore

WORDS = ("the harbour keeps a blue lighthouse and the archive holds every essay while founders talk to users "
         "and write code the secret number is kept by the red boats").split()
SCORE_FLAGS = ["--max-length", "256", "--segment-len", "16", "--short-window", "24", "--chunk-size", "3",
               "--token-budget", "700", "--device", "cpu", "--no-progress"]


def make_records(n: int = 11) -> list[dict]:
    rng = random.Random(5)
    recs = [{"id": f"r{i}", "context": " ".join(rng.choice(WORDS) for _ in range(10 + 17 * i)),
             "instruction": "What is the secret number?", "response": " ".join(rng.choice(WORDS) for _ in range(2 + i))}
            for i in range(n)]
    recs.append({"id": "empty", "context": "a b c", "instruction": "q?", "response": ""})
    recs.append({"id": "long", "context": "x " * 900, "instruction": "q?", "response": "y"})  # truncated from the left
    return recs


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("plan") / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in make_records()))
    return path


CASES = {
    "gateau,ifd": [],
    "cam,ppl": ["--calibrate-attention"],
    "hmg,ifd,length": ["--pack", "on"],
    "hmg-pair": ["--short-model", "MODEL"],
}


@pytest.mark.parametrize("case", list(CASES))
def test_plan_tokens_equal_the_scored_model_tokens(case, data, tiny_model_dir, tmp_path, capsys):
    methods = case.split("-")[0]
    extra = [str(tiny_model_dir) if a == "MODEL" else a for a in CASES[case]]
    flags = list(SCORE_FLAGS)
    if "--short-model" in extra:  # pair mode: no short window
        i = flags.index("--short-window")
        del flags[i: i + 2]
    args = [str(data), "--long-model", str(tiny_model_dir), "--methods", methods, *flags, *extra]
    assert main(["plan", *args, "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    out = tmp_path / "run"
    assert main(["score", *args, "--out", str(out)]) == 0
    history = RunStore(out).read_history()
    assert len(history) == 1 and history[0]["forward_tokens"] > 0
    assert planned["total_tokens"] == history[0]["forward_tokens"]
    assert planned["statuses"] == history[0]["statuses"]


def test_rows_per_kind_by_hand(data, tiny_model_dir, tiny_tokenizer):
    """Rows per pass kind against a count from the encoder: one full and one window row per ok sample, one
    segment row per whole 16-token segment of samples with at least two, one direct-answer row (ifd)."""
    config = ScoreConfig.from_flat(data=str(data), out="-", methods="gateau,ifd", long_model=str(tiny_model_dir),
                                   max_length=256, segment_len=16, short_window=24, chunk_size=3, token_budget=700,
                                   device="cpu", progress=False)
    plan = plan_tokens(config)
    encoder = PromptEncoder(tiny_tokenizer, "plain", 256)
    from gateau.data import load_samples

    samples = [s for s in load_samples(data) if s.response]
    encs = [encoder.encode(s) for s in samples]
    segments = sum(len(e.context) // 16 for e in encs if len(e.context) // 16 >= 2)
    assert plan.passes["full"].rows == plan.passes["window"].rows == plan.passes["direct answer"].rows == len(encs)
    assert plan.passes["segments"].rows == segments
    assert plan.passes["full"].longest == max(len(e.row()[0]) for e in encs) == plan.longest_row
    full_tokens = sum(len(e.row()[0]) for e in encs)
    alone_tokens = sum(len(encoder.response_alone(s)[0]) for s in samples)
    assert plan.methods["ifd"].rows == 2 * len(encs)
    assert plan.methods["ifd"].tokens == full_tokens + alone_tokens  # a method's own rows, unpadded
    assert plan.passes["full"].tokens >= full_tokens  # padded as run
    assert plan.statuses == {"ok": len(encs), "empty_response": 1}
