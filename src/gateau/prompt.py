"""Prompt templates, tokenisation into parts, left truncation, windows and segments.

A sample's whole text (template + context + instruction + response) is tokenised **once**, as the model sees it in
training, and split into four parts at the characters where each part begins (offset mapping)::

    head      template tokens before the context (BOS, system prompt, "### Input:\\n")
    context   the context tokens (possibly left-truncated)
    middle    template + instruction tokens between context and response ("### Instruction: ... ### Response:\\n")
    response  the response tokens (no EOS)

A token that straddles a boundary belongs to the part its first character is in. Tokenising the parts separately
would differ: SentencePiece tokenizers (Llama-2) give every separately tokenised part an extra leading "▁".
Every scoring row is ``head + <some context> + middle + response`` and the response is scored from the position
where it starts; the full row is exactly the whole text's tokens. The templates (``plain``, ``chat``) and
their text are `gateau.templates`'s; a chat template's rendered text is split at placeholders.

The response alone (Cherry's "direct answer", for IFD) is the response after the template's response header, as in
Cherry's code (``"### Response:" + output``): ``plain``: BOS + ``### Response:\\n{response}``; ``chat``: the
conversation with an empty user turn.
"""

from __future__ import annotations

from dataclasses import dataclass

from .data import Sample
from .errors import UsageError
from .status import Status
from .templates import PLAIN_PARTS, PLAIN_RESPONSE, TEMPLATES, chat_parts


@dataclass
class EncodedSample:
    """Token ids of one sample split into parts (see module docstring). ``truncated`` = context tokens dropped."""

    head: list[int]
    context: list[int]
    middle: list[int]
    response: list[int]
    truncated: int = 0

    def row(self, context: list[int] | None = None) -> tuple[list[int], int]:
        """(ids, response_start) for ``head + context + middle + response``; ``context`` defaults to the full one."""
        ctx = self.context if context is None else context
        ids = self.head + ctx + self.middle + self.response
        return ids, len(ids) - len(self.response)

    def window_row(self, window: int) -> tuple[list[int], int]:
        """The row with only the last ``window`` context tokens (window mode's short model)."""
        return self.row(self.context[-window:] if window > 0 else [])

    def segments(self, length: int, max_segments: int | None = None, seed: int = 0,
                 keep_last: bool = False) -> list[tuple[int, int]]:
        """[start, end) context-token spans of consecutive segments of ``length`` tokens. A shorter last segment
        is dropped (as in the paper and the official script: it sits next to the instruction, so recency inflates
        its attention) unless ``keep_last``. With ``max_segments``, an order-preserving seeded subsample."""
        n = len(self.context)
        spans = [(s, min(s + length, n)) for s in range(0, n, length)]
        if spans and not keep_last and spans[-1][1] - spans[-1][0] < length:
            spans.pop()
        if max_segments is not None and len(spans) > max_segments:
            import random

            keep = sorted(random.Random(seed).sample(range(len(spans)), max_segments))
            spans = [spans[i] for i in keep]
        return spans

    @property
    def n_tokens(self) -> int:
        return len(self.head) + len(self.context) + len(self.middle) + len(self.response)


class PromptEncoder:
    """Tokenise samples with one template for one tokenizer; left-truncate to ``max_length`` tokens."""

    def __init__(self, tokenizer, template: str = "plain", max_length: int = 65536):
        if template not in TEMPLATES:
            raise UsageError(f"unknown template {template!r}; choose one of {TEMPLATES}")
        if template == "chat" and not getattr(tokenizer, "chat_template", None):
            raise UsageError("--template chat needs a tokenizer with a chat template; this one has none (use plain)")
        if not getattr(tokenizer, "is_fast", False):
            raise UsageError("scoring needs a fast tokenizer (offset mapping); this one is slow")
        self.tokenizer = tokenizer
        self.template = template
        self.max_length = max_length
        self.parts = chat_parts(tokenizer) if template == "chat" else PLAIN_PARTS
        bos = tokenizer.bos_token_id
        self._bos = [bos] if template == "plain" and bos is not None else []
        # Cherry's direct answer: the response after the template's response header
        self._alone_prefix = (PLAIN_RESPONSE if template == "plain" else
                              self.parts.before_context + self.parts.between_context_and_instruction.lstrip("\n")
                              + self.parts.between_instruction_and_response)

    def _split(self, pieces: list[str]) -> list[list[int]]:
        """Tokenise ``"".join(pieces)`` once; the token ids of each piece (by the piece its first character is in).
        EncodeError (status bad_text) for text the tokenizer cannot encode."""
        try:
            enc = self.tokenizer("".join(pieces), add_special_tokens=False, return_offsets_mapping=True)
        except (TypeError, ValueError, UnicodeError) as exc:
            raise EncodeError(f"the text cannot be tokenised ({type(exc).__name__}: {exc})"[:300],
                              status=Status.BAD_TEXT) from None
        return _by_piece(pieces, enc["input_ids"], enc["offset_mapping"])

    def _split_many(self, pieces_of: list[list[str]]) -> list[list[list[int]] | EncodeError]:
        """`_split` of every entry of ``pieces_of`` in one batched tokenizer call (the fast tokenizer spreads a
        batch over the CPU's cores); when the batch cannot be encoded, each text on its own, so only the bad ones
        get their `EncodeError`."""
        if not pieces_of:
            return []
        try:
            enc = self.tokenizer(["".join(p) for p in pieces_of], add_special_tokens=False,
                                 return_offsets_mapping=True)
        except (TypeError, ValueError, UnicodeError):
            out: list[list[list[int]] | EncodeError] = []
            for pieces in pieces_of:
                try:
                    out.append(self._split(pieces))
                except EncodeError as exc:
                    out.append(exc)
            return out
        return [_by_piece(pieces, ids, offsets)
                for pieces, ids, offsets in zip(pieces_of, enc["input_ids"], enc["offset_mapping"])]

    def _pieces(self, sample: Sample) -> list[str]:
        p = self.parts
        return [p.before_context, sample.context,
                p.between_context_and_instruction + sample.instruction + p.between_instruction_and_response,
                sample.response]

    def encode(self, sample: Sample) -> EncodedSample:
        """Tokenise ``sample``; raise `EncodeError` if instruction + response alone exceed ``max_length`` or the
        text cannot be encoded."""
        return self._encoded(self._split(self._pieces(sample)))

    def encode_many(self, samples: list[Sample]) -> list[EncodedSample | EncodeError]:
        """`encode` of each sample (the `EncodeError` in its place for one that cannot be encoded), tokenised in
        one batch."""
        out: list[EncodedSample | EncodeError] = []
        for split in self._split_many([self._pieces(s) for s in samples]):
            try:
                out.append(split if isinstance(split, EncodeError) else self._encoded(split))
            except EncodeError as exc:
                out.append(exc)
        return out

    def _encoded(self, parts: list[list[int]]) -> EncodedSample:
        head, context, middle, response = parts
        enc = EncodedSample(head=self._bos + head, context=context, middle=middle, response=response)
        if not enc.response:
            raise EncodeError("the response has no tokens after tokenisation", status=Status.EMPTY_RESPONSE)
        fixed = len(enc.head) + len(enc.middle) + len(enc.response)
        if fixed >= self.max_length:
            raise EncodeError(
                f"template + instruction + response take {fixed} tokens, not below --max-length {self.max_length}; "
                "no context would be left", status=Status.TOO_LONG)
        overflow = enc.n_tokens - self.max_length
        if overflow > 0:
            enc.context = enc.context[overflow:]
            enc.truncated = overflow
        return enc

    def response_alone(self, sample: Sample) -> tuple[list[int], int]:
        """(ids, response_start) for the response after the template's response header only (no context, no
        instruction): Cherry's direct answer."""
        return self._alone(self._split([self._alone_prefix, sample.response]))

    def response_alone_many(self, samples: list[Sample]) -> list[tuple[list[int], int] | EncodeError]:
        """`response_alone` of each sample, tokenised in one batch."""
        return [split if isinstance(split, EncodeError) else self._alone(split)
                for split in self._split_many([[self._alone_prefix, s.response] for s in samples])]

    def _alone(self, parts: list[list[int]]) -> tuple[list[int], int]:
        prefix, response = parts
        ids = self._bos + prefix + response
        return ids, len(ids) - len(response)


def _by_piece(pieces: list[str], ids: list[int], offsets: list[tuple[int, int]]) -> list[list[int]]:
    """The token ids of each piece of the text ``"".join(pieces)``: a token belongs to the piece its first character
    is in (a zero-width token, e.g. a special one, to the piece of the character before it); pieces in order."""
    import numpy as np

    if not ids:
        return [[] for _ in pieces]
    starts = np.cumsum([0] + [len(piece) for piece in pieces[:-1]])
    spans = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    where = np.where(spans[:, 1] > spans[:, 0], spans[:, 0], np.maximum(spans[:, 0] - 1, 0))
    part = np.maximum.accumulate(np.searchsorted(starts, where, side="right") - 1)  # pieces never go back
    bounds = np.searchsorted(part, np.arange(len(pieces) + 1), side="left")
    return [ids[bounds[k]:bounds[k + 1]] for k in range(len(pieces))]


class EncodeError(ValueError):
    """A sample cannot be encoded for scoring (too long, no response token, untokenisable text); carries its
    per-sample status."""

    def __init__(self, message: str, status: Status):
        super().__init__(message)
        self.status = status

