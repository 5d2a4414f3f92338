"""LLM judges: any OpenAI-compatible chat endpoint, or a local HF model through the shared generation path.

A judge rates ``JudgeRequest``s (chat messages + the rating scale). Each request is judged ``times`` times (the
paper judges every answer twice and averages) and every reply is cached in a JSONL file keyed by the judge, the
messages, the temperature and the repeat number, so a re-run costs nothing. A reply without a rating in the scale
is recorded as malformed (rating None), never fatal.

An endpoint judge sends up to ``workers`` requests at once (a thread pool); replies are cached by the calling thread
alone, one fsynced line each as it arrives, so a run killed at any moment keeps every reply received and a re-run
asks only for the rest. Retries are the ``openai`` client's own (``max_retries``): connection errors, timeouts, 408,
409, 429 and 5xx are retried with its exponential backoff (0.5 s doubling to 8 s, with jitter), waiting what a
``Retry-After`` header asks instead (up to 2 minutes). A request still failing after them stops the run (the cache
keeps what was judged); errors that will not pass (401/403/404) stop it at once with a clear message, and a request
the endpoint refuses (other 4xx, e.g. a prompt over its window) is recorded on that item. Tokens used are summed in
``judge.usage``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .results import EvalError

_DOUBLE = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_SINGLE = re.compile(r"\[(\d+\.?\d*)\]")


def parse_rating(text: str | None, low: float, high: float) -> float | None:
    """The rating in ``text``: the first ``[[x]]`` (MT-Bench's format), else the first ``[x]`` (LongBench-Chat's),
    as FastChat reads them; None when absent or outside ``[low, high]``."""
    if not text:
        return None
    for pattern in (_DOUBLE, _SINGLE):
        for match in pattern.finditer(text):
            value = float(match.group(1))
            if low <= value <= high:
                return value
    return None


@dataclass(frozen=True)
class JudgeRequest:
    """Chat messages for the judge and the rating scale ``[low, high]`` its prompt asks for."""

    messages: tuple[dict[str, str], ...]
    low: float = 1
    high: float = 10

    @classmethod
    def user(cls, content: str, *, system: str | None = None, low: float = 1, high: float = 10) -> JudgeRequest:
        msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": content}]
        return cls(messages=tuple(msgs), low=low, high=high)


@dataclass
class Reply:
    """One judge reply: text (None when the endpoint refused the request), token counts, error text."""

    text: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None


@dataclass
class Judgment:
    """A request's verdict: the mean of the parsed ratings (None if none parsed), each repeat's rating and reply,
    and ``malformed``: how many replies had no rating in the scale."""

    rating: float | None
    ratings: list[float | None]
    replies: list[str | None]
    errors: list[str | None]

    @property
    def malformed(self) -> int:
        return sum(r is None for r in self.ratings)

    def as_dict(self) -> dict[str, Any]:
        return {"rating": self.rating, "ratings": self.ratings, "replies": self.replies, "errors": self.errors,
                "malformed": self.malformed}


@dataclass
class Usage:
    """Judge calls and tokens: ``calls`` made now, ``cached`` replies reused, tokens of the calls made now."""

    calls: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def line(self) -> str:
        return (f"judge: {self.calls} calls ({self.cached} cached), {self.prompt_tokens} prompt + "
                f"{self.completion_tokens} completion tokens")


class JudgeCache:
    """Judge replies by key in an append-only JSONL file. A last line cut short by a kill is dropped on load (its
    reply is asked again), so the next line appended starts on a line of its own. One writer: the judging thread."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self._entries: dict[str, dict[str, Any]] = {}
        if self.path and self.path.exists():
            data = self.path.read_bytes()
            if data and not data.endswith(b"\n"):
                data = data[: data.rfind(b"\n") + 1]
                self.path.write_bytes(data)
            for line in data.decode("utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                self._entries[entry["key"]] = entry

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Reply | None:
        e = self._entries.get(key)
        return None if e is None else Reply(e["text"], e["prompt_tokens"], e["completion_tokens"], e.get("error"))

    def put(self, key: str, reply: Reply) -> None:
        entry = {"key": key, "text": reply.text, "prompt_tokens": reply.prompt_tokens,
                 "completion_tokens": reply.completion_tokens, "error": reply.error}
        self._entries[key] = entry
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())


@dataclass
class Judge:
    """Base judge: caching, repeats, parsing and usage; subclasses supply ``_complete_many``.

    ``times``: judgments per request, averaged. ``temperature``: judge sampling temperature. A deterministic
    judge (``deterministic`` true: a local model decoding greedily) is asked once and its reply counted ``times``.
    """

    name: str
    times: int = 2
    temperature: float = 0.0
    max_tokens: int = 1024
    cache: JudgeCache = field(default_factory=lambda: JudgeCache(None))
    progress: bool = True
    usage: Usage = field(default_factory=Usage)

    @property
    def deterministic(self) -> bool:
        return False

    def key(self, request: JudgeRequest, repeat: int) -> str:
        blob = json.dumps([self.name, list(request.messages), self.temperature, self.max_tokens, repeat],
                          ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _complete_many(self, jobs: Sequence[tuple[tuple[dict[str, str], ...], int]]) -> Iterator[tuple[int, Reply]]:
        """Yield ``(job index, Reply)`` for jobs of (messages, repeat); any order."""
        raise NotImplementedError

    def judge(self, requests: Sequence[JudgeRequest], *, desc: str = "judging") -> list[Judgment]:
        """Judge every request ``times`` times (cached replies reused) and return the verdicts in order."""
        repeats = 1 if self.deterministic else self.times
        if self.times < 1:
            raise EvalError("--judge-times must be at least 1")
        replies: dict[tuple[int, int], Reply] = {}
        jobs: list[tuple[int, int]] = []
        for i, req in enumerate(requests):
            for r in range(repeats):
                hit = self.cache.get(self.key(req, r))
                if hit is None:
                    jobs.append((i, r))
                else:
                    replies[(i, r)] = hit
                    self.usage.cached += 1
        if jobs:
            from tqdm import tqdm

            bar = tqdm(total=len(jobs), unit="call", desc=desc, disable=not self.progress, dynamic_ncols=True)
            try:
                for j, reply in self._complete_many([(requests[i].messages, r) for i, r in jobs]):
                    i, r = jobs[j]
                    self.cache.put(self.key(requests[i], r), reply)
                    replies[(i, r)] = reply
                    self.usage.calls += 1
                    self.usage.prompt_tokens += reply.prompt_tokens
                    self.usage.completion_tokens += reply.completion_tokens
                    bar.update(1)
            finally:
                bar.close()
        out = []
        for i, req in enumerate(requests):
            got = [replies[(i, r if r < repeats else 0)] for r in range(self.times)]
            ratings = [parse_rating(g.text, req.low, req.high) for g in got]
            parsed = [x for x in ratings if x is not None]
            out.append(Judgment(rating=sum(parsed) / len(parsed) if parsed else None, ratings=ratings,
                                replies=[g.text for g in got], errors=[g.error for g in got]))
        return out

    def describe(self) -> dict[str, Any]:
        """Settings that identify this judge's verdicts (for results and fingerprints)."""
        return {"judge": self.name, "times": self.times, "temperature": self.temperature}


# Statuses without an exception class of their own that the openai client retries; still failing after its
# retries, they stop the run (as 429, 5xx and connection errors do) rather than mark the item unjudgeable.
_TRANSIENT_STATUS = (408, 409, 429)

DEFAULT_WORKERS = 8
"""Concurrent requests of an endpoint judge: MT-Bench's 320 calls take 1/8 of the sequential time, and a rate
limit hit on the way costs the client's ``Retry-After`` waits, not failures."""


@dataclass
class OpenAIJudge(Judge):
    """A judge behind an OpenAI-compatible ``/chat/completions`` endpoint (OpenAI, vLLM, llama.cpp, ...).

    ``url``: base URL (e.g. ``https://api.openai.com/v1``); key from ``api_key`` or ``$OPENAI_API_KEY``.
    ``retries``: the client's ``max_retries`` (further attempts after a transient failure; see the module docstring).
    ``timeout``: seconds per attempt. ``workers``: requests in flight at once (1 = one after the other).
    """

    url: str = ""
    model: str = ""
    api_key: str | None = None
    retries: int = 5
    timeout: float = 120.0
    workers: int = DEFAULT_WORKERS

    def __post_init__(self) -> None:
        try:
            import openai
        except ImportError as exc:
            raise EvalError("an OpenAI-compatible judge needs the openai client: pip install openai") from exc
        if self.workers < 1:
            raise EvalError(f"--judge-workers must be at least 1, got {self.workers}")
        if self.retries < 0:
            raise EvalError(f"judge retries must be at least 0, got {self.retries}")
        self._openai = openai
        key = self.api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self._client = openai.OpenAI(base_url=self.url, api_key=key, max_retries=self.retries, timeout=self.timeout)

    def _complete_one(self, messages: tuple[dict[str, str], ...]) -> Reply:
        """One request, with the client's retries; EvalError when it cannot be judged now or ever."""
        oa = self._openai
        try:
            resp = self._client.chat.completions.create(model=self.model, messages=list(messages),
                                                        temperature=self.temperature, max_tokens=self.max_tokens)
        except (oa.AuthenticationError, oa.PermissionDeniedError, oa.NotFoundError) as exc:
            raise EvalError(f"judge endpoint {self.url} refused model {self.model!r}: {exc}") from exc
        except (oa.APIConnectionError, oa.RateLimitError, oa.InternalServerError) as exc:
            raise EvalError(f"judge endpoint {self.url} failed {self.retries + 1} times: {exc}") from exc
        except oa.APIStatusError as exc:
            if exc.status_code in _TRANSIENT_STATUS:
                raise EvalError(f"judge endpoint {self.url} failed {self.retries + 1} times: {exc}") from exc
            return Reply(None, error=f"HTTP {exc.status_code}: {exc.message}")  # this request cannot be judged
        usage = getattr(resp, "usage", None)
        text = resp.choices[0].message.content if resp.choices else None
        return Reply(text, getattr(usage, "prompt_tokens", 0) or 0, getattr(usage, "completion_tokens", 0) or 0,
                     None if text is not None else "empty reply")

    def _complete_many(self, jobs: Sequence[tuple[tuple[dict[str, str], ...], int]]) -> Iterator[tuple[int, Reply]]:
        """Replies in the order they arrive, from ``workers`` threads; the caller's thread consumes (and caches)
        them. On an error or an early stop, requests not yet started are cancelled."""
        if self.workers == 1:
            for j, (messages, _repeat) in enumerate(jobs):
                yield j, self._complete_one(messages)
            return
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="judge")
        futures: dict[Future, int] = {}
        try:
            futures = {pool.submit(self._complete_one, messages): j for j, (messages, _repeat) in enumerate(jobs)}
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class HFJudge(Judge):
    """A local HF model as judge, through ``generate.HFGenerator`` (batched, chat template)."""

    generator: Any = None

    @property
    def deterministic(self) -> bool:
        return self.temperature == 0

    def _complete_many(self, jobs: Sequence[tuple[tuple[dict[str, str], ...], int]]) -> Iterator[tuple[int, Reply]]:
        from .generate import GenRequest, Prompt, render

        tok = self.generator.tokenizer
        by_repeat: dict[int, list[int]] = {}
        for j, (_messages, repeat) in enumerate(jobs):
            by_repeat.setdefault(repeat, []).append(j)
        for repeat, idx in by_repeat.items():  # one seed per repeat, so sampled repeats differ
            requests = [GenRequest(render(tok, Prompt(messages=jobs[j][0])), self.max_tokens) for j in idx]
            for k, gen in self.generator.generate_iter(requests, temperature=self.temperature, seed=repeat,
                                                       desc="judge generating"):
                yield idx[k], Reply(gen.text, gen.prompt_tokens, gen.new_tokens)


@dataclass(frozen=True)
class JudgeOptions:
    """The judge an evaluation uses, as its ``--judge-*`` flags or the ``judge`` section of its settings file name
    it (`make_judge` reads the same values). ``cache``: the JSONL reply cache (None = the evaluation's default)."""

    model: str | None = None
    url: str | None = None
    times: int = 2
    temperature: float = 0.0
    max_tokens: int = 1024
    cache: str | None = None
    workers: int = DEFAULT_WORKERS
    revision: str | None = None
    trust_remote_code: bool = False

    def make(self, *, default_cache: str | None, progress: bool, device: str = "auto",
             dtype: str = "auto") -> Judge | None:
        """The judge these options name (`make_judge`), caching into ``cache`` or else ``default_cache``."""
        return make_judge(self.model, self.url, times=self.times, temperature=self.temperature,
                          max_tokens=self.max_tokens, cache_path=self.cache or default_cache, progress=progress,
                          device=device, dtype=dtype, workers=self.workers, revision=self.revision,
                          trust_remote_code=self.trust_remote_code)


def make_judge(model: str | None, url: str | None, *, times: int = 2, temperature: float = 0.0,
               max_tokens: int = 1024, cache_path: str | Path | None = None, progress: bool = True,
               device: str = "auto", dtype: str = "auto", workers: int = DEFAULT_WORKERS, revision: str | None = None,
               trust_remote_code: bool = False) -> Judge | None:
    """The judge the CLI flags name: ``url`` + ``model`` → OpenAI-compatible (``workers`` requests at once);
    ``model`` alone → a local HF model (folder, hub id or ``default``; batched by its generator, ``workers`` unused;
    ``revision`` and ``trust_remote_code`` as for the evaluated model, `gateau.hub`); neither → None (offline
    scoring)."""
    if url and not model:
        raise EvalError("--judge-url needs --judge-model NAME (the model name the endpoint serves)")
    if not model:
        return None
    cache = JudgeCache(cache_path)
    if url:
        return OpenAIJudge(name=f"openai:{url}:{model}", url=url, model=model, times=times, temperature=temperature,
                           max_tokens=max_tokens, cache=cache, progress=progress, workers=workers)
    from .generate import ModelSettings, load_generator

    gen = load_generator(ModelSettings(model=model, device=device, dtype=dtype, progress=progress, revision=revision,
                                       trust_remote_code=trust_remote_code))
    return HFJudge(name=f"hf:{model}", generator=gen, times=times, temperature=temperature, max_tokens=max_tokens,
                   cache=cache, progress=progress)
