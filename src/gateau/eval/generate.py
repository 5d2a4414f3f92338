"""The one generation path of every evaluation: prompts → token ids → batched greedy (or sampled) generation.

``render`` turns a ``Prompt`` into token ids with the model's chat template (or plain text where the benchmark
asks for it). ``HFGenerator`` runs HF transformers ``generate`` with left padding and the KV cache, batching
prompts of similar length under a token budget; ``VLLMGenerator`` is an optional backend with the same interface
(``pip install vllm``, CUDA). Both yield results as each batch finishes, so callers can log every item at once
and a killed run resumes where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..hub import NO_HUB_OPTIONS, HubOptions, hub_kwargs
from .results import EvalError


@dataclass(frozen=True)
class Prompt:
    """What the model is asked.

    ``messages``: chat turns (``{"role", "content"}``), ending with a user turn. ``assistant_prefix``: text the
    assistant's reply starts with (RULER's answer prefix), appended after the template's generation prompt.
    ``raw``: a plain-text prompt fed without any chat template (LongBench's few-shot and code datasets); when
    set, ``messages`` is ignored.
    """

    messages: tuple[dict[str, str], ...] = ()
    assistant_prefix: str = ""
    raw: str | None = None

    @classmethod
    def user(cls, content: str, *, system: str | None = None, assistant_prefix: str = "") -> Prompt:
        """A single user turn, optionally after a system turn."""
        msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": content}]
        return cls(messages=tuple(msgs), assistant_prefix=assistant_prefix)


def render(tokenizer: Any, prompt: Prompt) -> list[int]:
    """Token ids of ``prompt`` ready for generation.

    Chat prompts use ``tokenizer.chat_template`` with the generation prompt (a tokenizer without one gets the
    turns' contents joined by blank lines); the rendered text is tokenized without adding special tokens again.
    """
    if prompt.raw is not None:
        return list(tokenizer(prompt.raw, add_special_tokens=True)["input_ids"])
    if not prompt.messages:
        raise EvalError("a prompt needs messages or raw text")
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(list(prompt.messages), tokenize=False, add_generation_prompt=True)
        return list(tokenizer(text + prompt.assistant_prefix, add_special_tokens=False)["input_ids"])
    text = "\n\n".join(m["content"] for m in prompt.messages) + prompt.assistant_prefix
    return list(tokenizer(text, add_special_tokens=True)["input_ids"])


@dataclass
class Generation:
    """One finished generation: the decoded text (special tokens removed), prompt and generated token counts."""

    text: str
    prompt_tokens: int
    new_tokens: int


@dataclass
class GenStats:
    """Running totals of a generator: tokens fed, tokens generated and wall seconds spent in generate."""

    prompt_tokens: int = 0
    new_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        """(prompt + generated) tokens per wall second."""
        return (self.prompt_tokens + self.new_tokens) / self.seconds if self.seconds else 0.0


@dataclass
class GenRequest:
    """A prompt's token ids and its own generation limit (new tokens)."""

    ids: list[int]
    max_new_tokens: int


@dataclass
class HFGenerator:
    """Batched generation with a loaded HF causal LM (``gateau.models.LoadedModel``).

    Prompts are sorted by length (longest first) and grouped so that rows × (longest prompt + max new tokens)
    stays under ``token_budget`` tokens, a batch holds at most ``max_batch`` rows and no row is more than
    ``max_padding`` (10%) shorter than the batch's longest (padding stays small); rows are left-padded.
    ``temperature`` 0 means greedy decoding; above 0, multinomial sampling seeded by ``seed``. On CUDA out of
    memory a batch is split in two and retried.
    """

    loaded: Any
    token_budget: int = 32768
    max_batch: int = 8
    progress: bool = True
    stats: GenStats = field(default_factory=GenStats)
    max_padding: float = 0.1

    @property
    def tokenizer(self) -> Any:
        return self.loaded.tokenizer

    @property
    def context_window(self) -> int | None:
        return self.loaded.context_window

    def _eos_ids(self) -> list[int]:
        ids: list[int] = []
        gen_eos = getattr(getattr(self.loaded.model, "generation_config", None), "eos_token_id", None)
        for value in (self.tokenizer.eos_token_id, gen_eos):
            for v in (value if isinstance(value, (list, tuple)) else [value]):
                if v is not None and int(v) not in ids:
                    ids.append(int(v))
        return ids

    def batches(self, requests: Sequence[GenRequest]) -> list[list[int]]:
        """Indices of ``requests`` grouped into batches (longest first; one max_new_tokens per batch)."""
        order = sorted(range(len(requests)), key=lambda i: (-requests[i].max_new_tokens, -len(requests[i].ids)))
        out: list[list[int]] = []
        current: list[int] = []
        for i in order:
            if current:
                first = requests[current[0]]
                width = len(first.ids) + first.max_new_tokens
                fits = (len(current) + 1) * width <= self.token_budget and len(current) < self.max_batch
                padded = len(requests[i].ids) < (1 - self.max_padding) * len(first.ids)  # shorter rows wait
                if not fits or padded or requests[i].max_new_tokens != first.max_new_tokens:
                    out.append(current)
                    current = []
            current.append(i)
        if current:
            out.append(current)
        return out

    def generate_iter(self, requests: Sequence[GenRequest], *, temperature: float = 0.0, seed: int = 0,
                      desc: str = "generating") -> Iterator[tuple[int, Generation]]:
        """Yield ``(index into requests, Generation)`` as each batch finishes (batch order, not input order)."""
        from tqdm import tqdm

        total = sum(len(r.ids) for r in requests)
        bar = tqdm(total=len(requests), unit="prompt", desc=desc, disable=not self.progress or not requests,
                   dynamic_ncols=True)
        done = 0
        try:
            for batch in self.batches(requests):
                for index, gen in self._run_split(requests, batch, temperature, seed):
                    done += gen.prompt_tokens
                    bar.update(1)
                    bar.set_postfix_str(f"{self.stats.tokens_per_second:.0f} tok/s, {done}/{total} prompt tok")
                    yield index, gen
        finally:
            bar.close()

    def generate(self, requests: Sequence[GenRequest], **kwargs: Any) -> list[Generation]:
        """All generations, in input order."""
        out: list[Generation | None] = [None] * len(requests)
        for i, gen in self.generate_iter(requests, **kwargs):
            out[i] = gen
        return out  # type: ignore[return-value]

    def _run_split(self, requests: Sequence[GenRequest], batch: list[int], temperature: float,
                   seed: int) -> list[tuple[int, Generation]]:
        import torch

        try:
            return self._run_batch(requests, batch, temperature, seed)
        except torch.OutOfMemoryError:
            if len(batch) == 1:
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            half = len(batch) // 2
            return (self._run_split(requests, batch[:half], temperature, seed)
                    + self._run_split(requests, batch[half:], temperature, seed))

    def padded(self, requests: Sequence[GenRequest], batch: list[int]) -> tuple[Any, Any, int, list[int]]:
        """The prompts of ``batch`` left-padded: ids and attention mask (rows × longest prompt, on the CPU), the pad
        id and the EOS ids."""
        import torch

        eos = self._eos_ids()
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos[0]
        width = max(len(requests[i].ids) for i in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):
            seq = requests[i].ids
            ids[row, width - len(seq):] = torch.tensor(seq, dtype=torch.long)
            mask[row, width - len(seq):] = 1
        return ids, mask, pad, eos

    def generations(self, requests: Sequence[GenRequest], batch: list[int], new_rows: list[list[int]],
                    eos: list[int]) -> list[tuple[int, Generation]]:
        """Each row's new tokens (``new_rows``, padded after EOS) as a `Generation`: text up to and with the
        first EOS (special tokens removed), token counts; added to the running totals."""
        results = []
        for row, i in enumerate(batch):
            new = new_rows[row]
            n = len(new)
            for pos, t in enumerate(new):
                if t in eos:
                    n = pos + 1
                    break
            gen = Generation(text=self.tokenizer.decode(new[:n], skip_special_tokens=True),
                             prompt_tokens=len(requests[i].ids), new_tokens=n)
            self.stats.prompt_tokens += gen.prompt_tokens
            self.stats.new_tokens += n
            results.append((i, gen))
        return results

    def _run_batch(self, requests: Sequence[GenRequest], batch: list[int], temperature: float,
                   seed: int) -> list[tuple[int, Generation]]:
        import torch
        from transformers import GenerationConfig

        ids, mask, pad, eos = self.padded(requests, batch)
        config = GenerationConfig(max_new_tokens=requests[batch[0]].max_new_tokens, do_sample=temperature > 0,
                                  temperature=temperature if temperature > 0 else None, top_p=None, top_k=None,
                                  pad_token_id=pad, eos_token_id=eos, use_cache=True)
        if temperature > 0:
            torch.manual_seed(seed)
        start = time.perf_counter()
        with torch.inference_mode():
            out = self.loaded.model.generate(input_ids=ids.to(self.loaded.device),
                                             attention_mask=mask.to(self.loaded.device), generation_config=config)
        self.stats.seconds += time.perf_counter() - start
        return self.generations(requests, batch, out[:, ids.shape[1]:].tolist(), eos)


@dataclass
class VLLMGenerator:
    """The same interface on vLLM (optional, CUDA): ``pip install vllm``. Loads ``spec`` with vLLM itself."""

    spec: str
    dtype: str = "auto"
    max_model_len: int | None = None
    progress: bool = True
    stats: GenStats = field(default_factory=GenStats)
    hub: HubOptions = NO_HUB_OPTIONS

    def __post_init__(self) -> None:
        try:
            from vllm import LLM
        except ImportError as exc:
            raise EvalError("--backend vllm needs vLLM: pip install vllm (CUDA only)") from exc
        from gateau.models import DEFAULT_MODEL

        if self.spec == DEFAULT_MODEL:
            raise EvalError("--backend vllm needs a model folder or hub id (the embedded default is HF-only)")
        hub = hub_kwargs(self.spec, self.hub)
        if "revision" in hub:
            hub["tokenizer_revision"] = hub["revision"]
        self._llm = LLM(model=self.spec, dtype=self.dtype, max_model_len=self.max_model_len, **hub)
        self.tokenizer = self._llm.get_tokenizer()
        self.context_window = self.max_model_len or self._llm.llm_engine.model_config.max_model_len

    def generate_iter(self, requests: Sequence[GenRequest], *, temperature: float = 0.0, seed: int = 0,
                      desc: str = "generating") -> Iterator[tuple[int, Generation]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        groups: dict[int, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(r.max_new_tokens, []).append(i)
        for max_new, idx in groups.items():
            params = SamplingParams(max_tokens=max_new, temperature=temperature, seed=seed)
            start = time.perf_counter()
            outs = self._llm.generate([TokensPrompt(prompt_token_ids=requests[i].ids) for i in idx], params,
                                      use_tqdm=self.progress)
            self.stats.seconds += time.perf_counter() - start
            for i, o in zip(idx, outs):
                c = o.outputs[0]
                gen = Generation(text=c.text, prompt_tokens=len(requests[i].ids), new_tokens=len(c.token_ids))
                self.stats.prompt_tokens += gen.prompt_tokens
                self.stats.new_tokens += gen.new_tokens
                yield i, gen

    def generate(self, requests: Sequence[GenRequest], **kwargs: Any) -> list[Generation]:
        out: list[Generation | None] = [None] * len(requests)
        for i, gen in self.generate_iter(requests, **kwargs):
            out[i] = gen
        return out  # type: ignore[return-value]


@dataclass(frozen=True)
class ModelSettings:
    """How to load and run the evaluated model (shared by every ``gateau eval`` command)."""

    model: str = "default"
    device: str = "auto"
    dtype: str = "auto"
    attn_impl: str = "sdpa"
    backend: str = "hf"
    token_budget: int = 32768
    max_batch: int = 8
    progress: bool = True
    revision: str | None = None
    trust_remote_code: bool = False

    @property
    def hub(self) -> HubOptions:
        """``revision`` and ``trust_remote_code`` of the evaluated model (`gateau.hub.HubOptions`)."""
        return HubOptions(revision=self.revision, trust_remote_code=self.trust_remote_code)

    def fingerprint(self) -> dict[str, str]:
        """The settings that change generated text (device/batching do not, up to numerics); ``revision`` only
        when it is set and the model is a hub id (it chooses the weights), so other answers keep their settings."""
        out = {"model": self.model, "dtype": self.dtype, "backend": self.backend}
        if "revision" in hub_kwargs(self.model, self.hub):
            out["revision"] = self.revision
        return out


def load_generator(settings: ModelSettings) -> HFGenerator | VLLMGenerator:
    """Load the model named by ``settings.model`` (folder, hub id, .gguf, or ``default``) for generation;
    ``settings.progress`` False (``--no-progress``) also hides transformers' ``Loading weights`` bar."""
    if settings.backend == "vllm":
        return VLLMGenerator(settings.model, dtype=settings.dtype, progress=settings.progress, hub=settings.hub)
    if settings.backend != "hf":
        raise EvalError(f"unknown --backend {settings.backend!r}; choose hf or vllm")
    from gateau.models import load_model

    loaded = load_model(settings.model, device=settings.device, dtype=settings.dtype, attn_impl=settings.attn_impl,
                        hub=settings.hub, progress=settings.progress)
    return HFGenerator(loaded, token_budget=settings.token_budget, max_batch=settings.max_batch,
                       progress=settings.progress)
