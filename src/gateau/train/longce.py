"""LongCE (LongPPL, Fang et al. 2024, arXiv 2410.23771): response tokens weighted by how much the long context helps.

Each response token t gets the weight ``w_t = min(exp(log p_long(t) - log p_short(t)), cap)`` (cap 5 in LongPPL),
computed on the fly with the model being trained: ``log p_long`` from the training forward itself, ``log p_short``
from a second forward without gradient on the *short row*, and ``w`` is a constant of the backward pass. The loss
is then the chosen weighting (`gateau.train.loss`: token or sequence) of ``w_t x NLL_t`` instead of ``NLL_t``; all
weights 1 give the plain loss exactly.

The short row is HMG's window rule (`gateau.prompt.EncodedSample.window_row`): template head + the last ``window``
context tokens + instruction + response, i.e. the training sequence with the context tokens before the window
dropped. That span is found per training sequence by encoding its conversation with the scorer's `PromptEncoder`
and checking that the scorer's tokens (head, context, middle, response) are exactly the start of the training
sequence; when they are not (a conversation with more than one exchange or a system turn, no context paragraph,
a context within the window, or tokenisations that differ), the sequence has no short row and every weight is 1.

The same weights from a scoring run's stored per-token NLLs are `gateau.methods.hmg_tokens.longce_weights` (numpy,
select time); `longce_weights` here is its torch twin on the trainer's batch (a test checks they agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..data.samples import Sample
from ..methods.hmg_tokens import LONGCE_CAP
from ..prompt import EncodeError, PromptEncoder
from ..templates import CONTEXT_JOINER
from .data import Message
from .loss import IGNORE_INDEX, label_token_nll

SHORT_DROP_COLUMN = "short_drop"
"""The training-set column (and batch key, (B, 2) int) holding each sequence's short-row span."""
NO_DROP = (0, 0)
"""The span of a sequence without a short row: nothing dropped, every weight 1."""


@dataclass(frozen=True)
class LongCESettings:
    """``cap``: the largest token weight (LongPPL: 5); ``window``: context tokens the short row keeps (HMG's W)."""

    cap: float = LONGCE_CAP
    window: int = 128


def split_single_exchange(messages: Sequence[Message]) -> tuple[str, str, str] | None:
    """(context, instruction, response) of a user + assistant conversation whose user turn has a context paragraph
    (the instruction is the last ``\\n\\n`` paragraph, as the scorer splits LongAlign records); None otherwise."""
    if len(messages) != 2 or messages[0]["role"] != "user" or messages[1]["role"] != "assistant":
        return None
    context, sep, instruction = messages[0]["content"].rpartition(CONTEXT_JOINER)
    if not sep or not context.strip():
        return None
    return context, instruction, messages[1]["content"]


class ShortWindowSpans:
    """The context tokens a training sequence's short row drops, by HMG's window rule (see the module docstring)."""

    def __init__(self, tokenizer, template: str, window: int):
        self.encoder = PromptEncoder(tokenizer, template, max_length=2**62)
        self.window = window

    def span(self, messages: Sequence[Message], input_ids: Sequence[int]) -> tuple[int, int]:
        """[start, end) token positions of ``input_ids`` (the training sequence of ``messages``) that the short row
        leaves out; `NO_DROP` when the sequence has no short row."""
        parts = split_single_exchange(messages)
        if parts is None:
            return NO_DROP
        context, instruction, response = parts
        try:
            enc = self.encoder.encode(Sample(index=0, id="", context=context, instruction=instruction,
                                             response=response))
        except EncodeError:
            return NO_DROP
        scored, _ = enc.row()
        if list(input_ids[:len(scored)]) != scored or len(enc.context) <= self.window:
            return NO_DROP
        start = len(enc.head)
        return start, start + len(enc.context) - self.window


def short_rows(input_ids: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor,
               drops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded short rows of the batch rows with a span to drop: (input_ids, labels, attention_mask), each
    (R, T') for the R rows with ``drops[b, 1] > drops[b, 0]`` in batch order. ``lengths`` (B,) = real tokens per
    row, ``drops`` (B, 2) = [start, end) per row."""
    rows = [b for b in range(input_ids.shape[0]) if drops[b, 1] > drops[b, 0]]
    cut = [torch.cat([t[b, :int(drops[b, 0])], t[b, int(drops[b, 1]):int(lengths[b])]])
           for b in rows for t in (input_ids, labels)]
    width = max((c.numel() for c in cut), default=0)
    ids = input_ids.new_zeros(len(rows), width)
    lab = labels.new_full((len(rows), width), IGNORE_INDEX)
    mask = input_ids.new_zeros(len(rows), width)
    for r in range(len(rows)):
        n = cut[2 * r].numel()
        ids[r, :n], lab[r, :n], mask[r, :n] = cut[2 * r], cut[2 * r + 1], 1
    return ids, lab, mask


def short_token_nll(model: torch.nn.Module, input_ids: torch.Tensor, labels: torch.Tensor,
                    attention_mask: torch.Tensor | None, drops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(short NLL, has_short), both (B, T-1) aligned with the long batch's shifted labels: ``-log p_short`` (nats)
    of each label token from one no-gradient forward of the short rows, and where a label has a short value (label
    tokens of rows with a span, after it)."""
    lengths = (attention_mask.sum(1) if attention_mask is not None
               else torch.full((input_ids.shape[0],), input_ids.shape[1], device=input_ids.device))
    out = torch.zeros(labels.shape[0], labels.shape[1] - 1, device=input_ids.device)
    has = torch.zeros_like(out, dtype=torch.bool)
    ids, lab, mask = short_rows(input_ids, labels, lengths, drops)
    if ids.shape[0] == 0:
        return out, has
    with torch.no_grad():
        nll, _ = label_token_nll(model, {"input_ids": ids, "labels": lab, "attention_mask": mask})
    rows = [b for b in range(input_ids.shape[0]) if drops[b, 1] > drops[b, 0]]
    for r, b in enumerate(rows):
        start, end = int(drops[b, 0]), int(drops[b, 1])
        positions = (labels[b, 1:] != IGNORE_INDEX).nonzero().squeeze(1)  # shifted index t: label at t + 1
        positions = positions[positions + 1 >= end]  # labels after the dropped span (all of them for one exchange)
        out[b, positions] = nll[r, positions - (end - start)].float()
        has[b, positions] = True
    return out, has


def longce_weights(long_nll: torch.Tensor, short_nll: torch.Tensor, has_short: torch.Tensor,
                   cap: float) -> torch.Tensor:
    """(B, T-1) weights ``min(exp(log p_long - log p_short), cap)`` = ``min(exp(NLL_short - NLL_long), cap)`` where a
    short value exists, 1 elsewhere; no gradient flows through them."""
    gain = (short_nll - long_nll.detach().float()).clamp(max=torch.log(torch.tensor(float(cap))).item())
    return torch.where(has_short, gain.exp(), torch.ones_like(gain)).to(long_nll.dtype)
