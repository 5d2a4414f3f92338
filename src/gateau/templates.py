"""Prompt templates, written once: the names offered (`TEMPLATES`) and the text of each.

- ``plain``: ``### Input:\\n{context}\\n\\n### Instruction:\\n{instruction}\\n\\n### Response:\\n{response}``, the
  official GATEAU scripts' format (preceded by the tokenizer's BOS when it has one);
- ``chat``: the tokenizer's own chat template, with one user turn ``context + "\\n\\n" + instruction``.

Scoring (`gateau.prompt`) splits a template into the literal text around the three fields (`TemplateParts`);
training (`gateau.train.encode`) writes whole conversations with it (`plain_prompt`). This module imports nothing
of gateau, so `gateau.config` can take the names from here.
"""

from __future__ import annotations

from dataclasses import dataclass

TEMPLATES = ("plain", "chat")

CONTEXT_JOINER = "\n\n"
"""What separates the context from the instruction when both are written into one user turn."""

PLAIN_INPUT = "### Input:\n"
PLAIN_INSTRUCTION = "### Instruction:\n"
PLAIN_RESPONSE = "### Response:\n"
"""The plain template's response header; alone it is Cherry's direct-answer prefix (``"### Response:" + output``)."""

_CTX_MARK = "\x00GATEAU_CONTEXT\x00"
_INS_MARK = "\x00GATEAU_INSTRUCTION\x00"
_RSP_MARK = "\x00GATEAU_RESPONSE\x00"


@dataclass(frozen=True)
class TemplateParts:
    """Literal template text around the three fields (each may be empty)."""

    before_context: str
    between_context_and_instruction: str
    between_instruction_and_response: str


PLAIN_PARTS = TemplateParts(PLAIN_INPUT, CONTEXT_JOINER + PLAIN_INSTRUCTION, CONTEXT_JOINER + PLAIN_RESPONSE)


def plain_prompt(context: str, instruction: str) -> str:
    """The plain template up to the response: `PLAIN_PARTS` around ``context`` and ``instruction``; with an empty
    context there is no ``### Input:`` section (``### Instruction:\\n{instruction}\\n\\n### Response:\\n``)."""
    if not context:
        return PLAIN_INSTRUCTION + instruction + PLAIN_PARTS.between_instruction_and_response
    p = PLAIN_PARTS
    return (p.before_context + context + p.between_context_and_instruction + instruction
            + p.between_instruction_and_response)


def chat_parts(tokenizer) -> TemplateParts:
    """Render ``tokenizer``'s chat template with placeholders and split it into the literal text around the
    fields (so chat templates that add a system prompt work unchanged)."""
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": _CTX_MARK + CONTEXT_JOINER + _INS_MARK},
         {"role": "assistant", "content": _RSP_MARK}],
        tokenize=False,
    )
    before, rest = text.split(_CTX_MARK, 1)
    between_ci, rest = rest.split(_INS_MARK, 1)
    between_ir, _after = rest.split(_RSP_MARK, 1)
    return TemplateParts(before, between_ci, between_ir)
