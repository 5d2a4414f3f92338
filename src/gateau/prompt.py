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
        text = "".join(pieces)
        try:
            enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        except (TypeError, ValueError, UnicodeError) as exc:
            raise EncodeError(f"the text cannot be tokenised ({type(exc).__name__}: {exc})"[:300],
                              status=Status.BAD_TEXT) from None
        starts, pos = [], 0
        for piece in pieces:
            starts.append(pos)
            pos += len(piece)
        out: list[list[int]] = [[] for _ in pieces]
        part = 0
        for tok, (begin, end) in zip(enc["input_ids"], enc["offset_mapping"]):
            where = begin if end > begin else max(begin - 1, 0)  # zero-width (special) tokens: the char before
            while part + 1 < len(pieces) and where >= starts[part + 1]:
                part += 1
            out[part].append(tok)
        return out

    def encode(self, sample: Sample) -> EncodedSample:
        """Tokenise ``sample``; raise `EncodeError` if instruction + response alone exceed ``max_length`` or the
        text cannot be encoded."""
        p = self.parts
        head, context, middle, response = self._split([
            p.before_context, sample.context,
            p.between_context_and_instruction + sample.instruction + p.between_instruction_and_response,
            sample.response])
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
        prefix, response = self._split([self._alone_prefix, sample.response])
        ids = self._bos + prefix + response
        return ids, len(ids) - len(response)


class EncodeError(ValueError):
    """A sample cannot be encoded for scoring (too long, no response token, untokenisable text); carries its
    per-sample status."""

    def __init__(self, message: str, status: Status):
        super().__init__(message)
        self.status = status

