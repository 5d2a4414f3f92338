"""The tokenised training set: long selection + short data, encoded, with the counts the summary reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from ..config import FieldMap
from .data import (
    Conversation,
    LoadedSet,
    SampleSkip,
    SkipLog,
    TrainDataError,
    iter_conversations,
    load_long,
    load_short,
    mix_line,
    short_source,
)
from .encode import ConversationEncoder, Encoded
from .longce import SHORT_DROP_COLUMN, ShortWindowSpans
from .recipe import TrainConfig


@dataclass
class SourceStats:
    """Counts for one source ("long" or "short"): records read, sequences kept, tokens, truncation, skips."""

    read: int = 0
    kept: int = 0
    tokens: int = 0
    label_tokens: int = 0
    truncated: int = 0
    truncated_tokens: int = 0
    cut_at_empty_turn: int = 0
    skips: SkipLog = field(default_factory=SkipLog)

    def lines(self, label: str) -> list[str]:
        out = [f"  {label}: {self.read} records read, {self.kept} sequences kept, {self.tokens} tokens "
               f"({self.label_tokens} with loss), {self.truncated} truncated at --max-length "
               f"({self.truncated_tokens} tokens cut)"]
        if self.cut_at_empty_turn:
            out.append(f"  {label}: {self.cut_at_empty_turn} conversations cut before an empty assistant turn")
        return out + self.skips.lines(label)


@dataclass
class TrainingSet:
    """Encoded sequences (long first, then short) and per-source statistics."""

    sequences: list[Encoded]
    sources: list[str]
    ids: list[str]
    stats: dict[str, SourceStats]
    notes: list[str] = field(default_factory=list)
    short_drops: list[tuple[int, int]] | None = None
    """LongCE only: per sequence, the [start, end) tokens its short row drops (`gateau.train.longce`)."""

    def summary_lines(self) -> list[str]:
        long, short = self.stats["long"], self.stats["short"]
        lines = long.lines("long") + (short.lines("short") if short.read else [])
        lines.append(mix_line(long.kept, short.kept, long.tokens, short.tokens))
        if self.short_drops is not None:
            with_short = sum(end > start for start, end in self.short_drops)
            lines.append(f"  longce: {with_short} of {len(self.sequences)} sequences have a short row (the others "
                         "weigh every token 1)")
        return lines + [f"  note: {n}" for n in self.notes]

    def to_dataset(self):
        """A `datasets.Dataset` with ``input_ids`` and ``labels`` columns (TRL's pre-tokenised format)."""
        import datasets

        columns = {"input_ids": [s.input_ids for s in self.sequences], "labels": [s.labels for s in self.sequences]}
        if self.short_drops is not None:
            columns[SHORT_DROP_COLUMN] = [list(span) for span in self.short_drops]
        return datasets.Dataset.from_dict(columns)


def encode_into(conversations: Iterable[Conversation], encoder: ConversationEncoder, stats: SourceStats,
                out: TrainingSet, keep: int | None = None, spans: ShortWindowSpans | None = None) -> None:
    """Encode ``conversations`` into ``out`` in order, counting into ``stats``; stop once ``keep`` are kept. With
    ``spans`` (LongCE), also record each sequence's short-row span in ``out.short_drops``."""
    if keep is not None and keep <= 0:
        return
    for conv in conversations:
        try:
            enc = encoder.encode(conv.messages)
        except SampleSkip as skip:
            stats.skips.add(skip.reason, conv.location, skip.detail)
            continue
        stats.kept += 1
        stats.tokens += len(enc.input_ids)
        stats.label_tokens += enc.n_labels
        stats.truncated += enc.truncated > 0
        stats.truncated_tokens += enc.truncated
        out.sequences.append(enc)
        out.sources.append(conv.source)
        out.ids.append(conv.id)
        if spans is not None:
            out.short_drops.append(spans.span(conv.messages, enc.input_ids))
        if keep is not None and stats.kept >= keep:
            break


def _count_loaded(loaded: LoadedSet, stats: SourceStats, out: TrainingSet) -> None:
    stats.read += loaded.read
    stats.cut_at_empty_turn += loaded.cut_at_empty_turn
    stats.skips.merge(loaded.skips)
    out.notes.extend(loaded.notes)


def build_training_set(config: TrainConfig, tokenizer) -> TrainingSet:
    """Load, clean and encode the long data and the short data of ``config``.

    ``short_count`` keeps the first N short conversations that are actually trained on (cleaned and encoded),
    reading the short data only as far as needed. Raises `TrainDataError` when no long sample is left, e.g. when
    ``max_length`` is below every prompt, or the short data has no record.
    """
    encoder = ConversationEncoder(tokenizer, config.template, config.max_length)
    out = TrainingSet(sequences=[], sources=[], ids=[], stats={"long": SourceStats(), "short": SourceStats()})
    spans = None
    if config.loss == "longce":
        spans, out.short_drops = ShortWindowSpans(tokenizer, config.template, config.longce_window), []
    long = load_long(config.data, config.fields)
    _count_loaded(long, out.stats["long"], out)
    encode_into(long.conversations, encoder, out.stats["long"], out, spans=spans)
    if out.stats["long"].kept == 0:
        raise TrainDataError(_nothing_left(long.conversations, encoder, out.stats["long"], config))
    if not config.short_data:
        return out
    short = out.stats["short"]
    if config.short_count is None:
        loaded = load_short(config.short_data, config.short_setting)
        _count_loaded(loaded, short, out)
        encode_into(loaded.conversations, encoder, short, out, spans=spans)
        return out
    loaded = LoadedSet(conversations=[], skips=SkipLog())
    stream = iter_conversations(short_source(config.short_data), "short", "--short-data", FieldMap(), loaded)
    encode_into(stream, encoder, short, out, keep=config.short_count, spans=spans)
    if loaded.read == 0 and config.short_count > 0:
        raise TrainDataError(f"--short-data {config.short_data}: no records found (the file is empty)")
    _count_loaded(loaded, short, out)
    if short.kept < config.short_count:
        out.notes.append(f"--short-count {config.short_count}: only {short.kept} short conversations are usable")
    return out


def _nothing_left(conversations: list[Conversation], encoder: ConversationEncoder, stats: SourceStats,
                  config: TrainConfig) -> str:
    prompts = []
    for conv in conversations:
        try:
            prompts.append(encoder.prompt_length(conv.messages))
        except SampleSkip:
            continue
    reasons = "; ".join(f"{r}: {n}" for r, n in sorted(stats.skips.counts.items()))
    if prompts and min(prompts) >= config.max_length:
        return (f"--max-length {config.max_length} is below the prompt length of every sample (shortest prompt: "
                f"{min(prompts)} tokens), so no response token would be trained; raise --max-length")
    return f"no sample of {config.data} can be trained on ({reasons})"
