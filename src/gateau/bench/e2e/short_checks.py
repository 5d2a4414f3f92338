"""The short-instruction checks of `gateau bench e2e`: does fine-tuning on long data cost general chat ability?

- ``chat_nll``: the mean response NLL (nats/token; each conversation weighs the same) of held-out ShareGPT first
  exchanges (user turn → assistant reply) under the model's chat template. The held-out records are usable
  records number ``HELDOUT_START`` onwards of the wheel's ShareGPT V3, far past the first ``--short-count`` that
  training mixes in. Lower is better; a rise after training shows a loss of short-chat ability.
- ``mtbench_rouge``: MT-Bench first turns of the questions that ship a GPT-4 reference answer (math, reasoning,
  coding, in file order), answered greedily and scored by ROUGE-L F1 against that reference (LongBench's
  ``rouge_score`` from lm-evaluation-harness), 0–100. A reference metric, not a judge: coarse, but local.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

HELDOUT_START = 10_000  # usable ShareGPT records before this index are never held out (training takes the first N)


def usable_sharegpt() -> Iterator[tuple[dict[str, Any], list[dict[str, str]]]]:
    """(record, cleaned messages) of every ShareGPT V3 record `gateau train` can use, in file order (the order in
    which ``--short-count`` takes them)."""
    from ...train.data import SampleSkip, record_to_messages, sharegpt_path
    from ...train.jsonarray import StreamState, iter_json_array

    for record in iter_json_array(sharegpt_path(), StreamState()):
        try:
            messages, _ = record_to_messages(record)
        except (SampleSkip, ValueError):
            continue
        yield record, messages


def heldout_chats(count: int, *, start: int = HELDOUT_START, max_chars: int = 4000) -> list[dict[str, Any]]:
    """``count`` first exchanges ``{"id", "messages": [user, assistant]}`` of usable ShareGPT records from number
    ``start`` on, skipping exchanges longer than ``max_chars`` characters (they would dominate the cost)."""
    out: list[dict[str, Any]] = []
    for usable, (record, messages) in enumerate(usable_sharegpt(), start=1):
        if usable <= start:
            continue
        first = messages[:2]
        if [m["role"] for m in first] != ["user", "assistant"] or sum(len(m["content"]) for m in first) > max_chars:
            continue
        out.append({"id": f"sharegpt-{record.get('id', usable)}", "messages": first})
        if len(out) >= count:
            break
    return out


def mtbench_items(count: int) -> list[dict[str, Any]]:
    """The first ``count`` MT-Bench questions that have a GPT-4 reference: ``{"id", "question", "reference"}``
    (first turns only)."""
    from ...eval.mtbench import questions, reference_answers

    refs = reference_answers()
    items = [{"id": f"mtbench-{q['question_id']}", "question": q["turns"][0], "reference": refs[q["question_id"]][0]}
             for q in questions() if q["question_id"] in refs]
    return items[:count]


def chat_nll(loaded: Any, chats: list[dict[str, Any]], *, max_length: int = 2048,
             frozen: tuple[Any, int] | None = None) -> float:
    """Mean over ``chats`` of the assistant reply's NLL (nats/token) under ``loaded`` (a `gateau.models`
    LoadedModel), the reply's tokens being those the training encoder marks trainable. ``frozen``: a
    `gateau.train.frozen_prefix.FrozenPrefixCache` and how many leading layers the model shares with the base
    whose outputs it keeps (each chat then passes through those layers once for every model)."""
    from contextlib import nullcontext

    from ...measure.nll import forward_response_nll, make_batch
    from ...train.encode import IGNORE_INDEX, ConversationEncoder

    encoder = ConversationEncoder(loaded.tokenizer, "chat", max_length)
    device = next(loaded.model.parameters()).device
    values = []
    with frozen[0].installed(loaded.model, frozen[1]) if frozen else nullcontext():
        for chat in chats:
            enc = encoder.encode(chat["messages"])
            trainable = [i for i, label in enumerate(enc.labels) if label != IGNORE_INDEX]
            ids = enc.input_ids[: trainable[-1] + 1]
            batch = make_batch([(ids, trainable[0])], loaded.tokenizer.pad_token_id or 0, device)
            values.append(forward_response_nll(loaded.model, batch)[0])
    return float(sum(values) / len(values)) if values else float("nan")
