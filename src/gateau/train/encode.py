"""Conversations -> token ids and labels: loss on every assistant turn only, right truncation.

The conversation is rendered into an alternating list of *pieces* of text, each marked trainable (an assistant
turn, with its end-of-turn token) or not (everything else). Each piece is tokenised on its own and the ids are
concatenated, so the prompt tokens are exactly those the model sees at inference (the prompt rendered with the
generation prompt, tokenised alone) and the label mask needs no character offsets.

Templates:

- ``chat``: the tokenizer's chat template. Assistant turn *i* is the text that rendering ``messages[:i+1]`` adds
  to rendering ``messages[:i]`` with the generation prompt, without trailing whitespace; a template that does not
  render conversations as such prefixes is reported per sample (`SKIP_TEMPLATE`);
- ``plain``: the ``###`` template used for scoring (`gateau.templates.plain_prompt`: ``### Input:`` context,
  ``### Instruction:``, ``### Response:``; a user turn is split at its last blank line, and one with no text
  before it has no ``### Input:``), preceded by BOS when the tokenizer has one; each assistant turn ends with EOS,
  trained.

Labels are the input ids on trainable tokens and -100 elsewhere (the model shifts them). A sequence longer than
``max_length`` is cut from the right, so the prompt stays; one left with no trainable token is skipped
(`SKIP_NO_RESPONSE_TOKEN`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..errors import GateauError
from ..templates import CONTEXT_JOINER, TEMPLATES, plain_prompt
from .data import Message, SampleSkip

IGNORE_INDEX = -100
SKIP_NO_RESPONSE_TOKEN = "no_response_token"
SKIP_TEMPLATE = "template_error"


class TemplateError(GateauError, ValueError):
    """The requested template cannot be used with this tokenizer."""


@dataclass(frozen=True)
class Encoded:
    """One training sequence: ``input_ids`` and ``labels`` (same length, -100 = no loss); ``truncated`` = tokens cut
    from the right; ``full_length`` = tokens before the cut."""

    input_ids: list[int]
    labels: list[int]
    truncated: int
    full_length: int

    @property
    def n_labels(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


class ConversationEncoder:
    """Tokenise conversations for one tokenizer and template, cut to ``max_length`` tokens."""

    def __init__(self, tokenizer, template: str = "chat", max_length: int = 8192):
        if template not in TEMPLATES:
            raise TemplateError(f"unknown template {template!r}; choose chat or plain")
        if template == "chat" and not getattr(tokenizer, "chat_template", None):
            name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
            raise TemplateError(f"--template chat needs a tokenizer with a chat template, and {name} has none; "
                                "use --template plain (the ### template used for scoring)")
        self.tokenizer = tokenizer
        self.template = template
        self.max_length = max_length

    def pieces(self, messages: Sequence[Message]) -> list[tuple[str | list[int], bool]]:
        """(text or ids, trainable) pieces whose concatenation is the rendered conversation."""
        return self._chat_pieces(messages) if self.template == "chat" else self._plain_pieces(messages)

    def encode(self, messages: Sequence[Message]) -> Encoded:
        """Token ids and labels of ``messages``; raises `SampleSkip` when nothing is left to learn from."""
        ids: list[int] = []
        labels: list[int] = []
        for piece, trainable in self.pieces(messages):
            piece_ids = piece if isinstance(piece, list) else self._ids(piece)
            ids.extend(piece_ids)
            labels.extend(piece_ids if trainable else [IGNORE_INDEX] * len(piece_ids))
        full = len(ids)
        if not any(x != IGNORE_INDEX for x in labels):
            raise SampleSkip(SKIP_NO_RESPONSE_TOKEN, "the assistant turns have no tokens")
        ids, labels = ids[:self.max_length], labels[:self.max_length]
        if not any(x != IGNORE_INDEX for x in labels):
            raise SampleSkip(SKIP_NO_RESPONSE_TOKEN,
                             f"the prompt alone fills --max-length {self.max_length} (sequence of {full} tokens)")
        return Encoded(input_ids=ids, labels=labels, truncated=full - len(ids), full_length=full)

    def prompt_length(self, messages: Sequence[Message]) -> int:
        """Tokens before the first trainable piece (what must fit below ``max_length``)."""
        n = 0
        for piece, trainable in self.pieces(messages):
            if trainable:
                break
            n += len(piece) if isinstance(piece, list) else len(self._ids(piece))
        return n

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def _render(self, messages: Sequence[Message], generation_prompt: bool) -> str:
        try:
            return self.tokenizer.apply_chat_template(list(messages), tokenize=False,
                                                      add_generation_prompt=generation_prompt)
        except Exception as exc:  # jinja raises TemplateError and others (e.g. roles must alternate)
            raise SampleSkip(SKIP_TEMPLATE, f"the chat template cannot render this conversation ({exc})") from exc

    def _chat_pieces(self, messages: Sequence[Message]) -> list[tuple[str | list[int], bool]]:
        pieces: list[tuple[str | list[int], bool]] = []
        done = ""  # rendered text covered by the pieces so far
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            prompt = self._render(messages[:i], generation_prompt=True)
            full = self._render(messages[:i + 1], generation_prompt=False)
            if not prompt.startswith(done) or not full.startswith(prompt):
                raise SampleSkip(SKIP_TEMPLATE, f"the chat template does not render turn {i} as a continuation of "
                                 "the turns before it (try --template plain)")
            answer = full[len(prompt):]
            kept = answer.rstrip()
            pieces.append((prompt[len(done):], False))
            pieces.append((kept, True))
            if len(kept) < len(answer):
                pieces.append((answer[len(kept):], False))
            done = full
        rest = self._render(messages, generation_prompt=False)
        if not rest.startswith(done):
            raise SampleSkip(SKIP_TEMPLATE, "the chat template renders the whole conversation differently from its "
                             "turns (try --template plain)")
        if len(rest) > len(done):
            pieces.append((rest[len(done):], False))
        return pieces

    def _plain_pieces(self, messages: Sequence[Message]) -> list[tuple[str | list[int], bool]]:
        tok = self.tokenizer
        pieces: list[tuple[str | list[int], bool]] = []
        if tok.bos_token_id is not None:
            pieces.append(([tok.bos_token_id], False))
        eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
        text = ""
        for message in messages:
            role, content = message["role"], message["content"]
            if role == "assistant":
                pieces.append((text, False))
                pieces.append((content, True))
                if eos:
                    pieces.append((eos, True))
                text = CONTEXT_JOINER
            elif role == "system":
                text += content + CONTEXT_JOINER
            else:
                head, sep, tail = content.rpartition(CONTEXT_JOINER)
                text += plain_prompt(head, tail) if sep and head.strip() else plain_prompt("", content)
        return [(p, t) for p, t in pieces if p]
