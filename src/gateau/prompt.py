"""Prompt templates, tokenisation into parts, left truncation, windows and segments.

A sample is tokenised into four parts, each tokenised on its own so the context can be cut without
re-tokenising the rest::

    head      template tokens before the context (BOS, system prompt, "### Input:\\n")
    context   the context tokens (possibly left-truncated)
    middle    template + instruction tokens between context and response ("### Instruction: ... ### Response:\\n")
    response  the response tokens (no EOS)

Every scoring row is ``head + <some context> + middle + response`` and the response is scored from the
position where it starts. Templates:

- ``plain``: ``### Input:\\n{context}\\n\\n### Instruction:\\n{instruction}\\n\\n### Response:\\n{response}``
  (the official GATEAU scripts' format), preceded by the tokenizer's BOS if it has one;
- ``chat``: the tokenizer's chat template with one user turn ``context + "\\n\\n" + instruction`` and one assistant
  turn; the rendered text is split at placeholders, so chat templates with system prompts work unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from .data import Sample
from .status import Status

TEMPLATES = ("plain", "chat")

_CTX_MARK = "\x00GATEAU_CONTEXT\x00"
_INS_MARK = "\x00GATEAU_INSTRUCTION\x00"
_RSP_MARK = "\x00GATEAU_RESPONSE\x00"


@dataclass(frozen=True)
class TemplateParts:
    """Literal template text around the three fields (each may be empty)."""

    before_context: str
    between_context_and_instruction: str
    between_instruction_and_response: str


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

    def segments(self, length: int, max_segments: int | None = None, seed: int = 0) -> list[tuple[int, int]]:
        """[start, end) context-token spans of consecutive segments of ``length`` tokens; the last may be shorter.

        With ``max_segments``, an order-preserving seeded subsample of that many segments.
        """
        spans = [(s, min(s + length, len(self.context))) for s in range(0, len(self.context), length)]
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
            raise ValueError(f"unknown template {template!r}; choose one of {TEMPLATES}")
        if template == "chat" and not getattr(tokenizer, "chat_template", None):
            raise ValueError("--template chat needs a tokenizer with a chat template; this one has none (use plain)")
        self.tokenizer = tokenizer
        self.template = template
        self.max_length = max_length
        self.parts = _chat_parts(tokenizer) if template == "chat" else TemplateParts(
            "### Input:\n", "\n\n### Instruction:\n", "\n\n### Response:\n")
        bos = tokenizer.bos_token_id
        self._bos = [bos] if template == "plain" and bos is not None else []

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def encode(self, sample: Sample) -> EncodedSample:
        """Tokenise ``sample``; raise `TooLongError` if instruction + response alone exceed ``max_length``."""
        enc = EncodedSample(
            head=self._bos + self._ids(self.parts.before_context),
            context=self._ids(sample.context),
            middle=self._ids(self.parts.between_context_and_instruction + sample.instruction
                             + self.parts.between_instruction_and_response),
            response=self._ids(sample.response),
        )
        if not enc.response:
            raise TooLongError("the response has no tokens after tokenisation", status=Status.EMPTY_RESPONSE)
        fixed = len(enc.head) + len(enc.middle) + len(enc.response)
        if fixed >= self.max_length:
            raise TooLongError(
                f"template + instruction + response take {fixed} tokens, not below --max-length {self.max_length}; "
                "no context would be left")
        overflow = enc.n_tokens - self.max_length
        if overflow > 0:
            enc.context = enc.context[overflow:]
            enc.truncated = overflow
        return enc

    def response_alone(self, enc: EncodedSample) -> tuple[list[int], int]:
        """(ids, response_start) for the response with no context and no instruction (Cherry's direct answer)."""
        ids = self._bos + enc.response
        return ids, len(self._bos)


class TooLongError(ValueError):
    """A sample cannot fit ``max_length`` (or has no response tokens); carries a per-sample status code."""

    def __init__(self, message: str, status: Status = Status.TOO_LONG):
        super().__init__(message)
        self.status = status


def _chat_parts(tokenizer) -> TemplateParts:
    """Render the chat template with placeholders and split it into the literal text around the fields."""
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": _CTX_MARK + "\n\n" + _INS_MARK}, {"role": "assistant", "content": _RSP_MARK}],
        tokenize=False,
    )
    before, rest = text.split(_CTX_MARK, 1)
    between_ci, rest = rest.split(_INS_MARK, 1)
    between_ir, _after = rest.split(_RSP_MARK, 1)
    return TemplateParts(before, between_ci, between_ir)
