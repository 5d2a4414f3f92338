"""Device-dependent choices (device, attention, packing, bf16) and the optional CUDA-only extras."""

from __future__ import annotations

import importlib.util
import os

from ..hub import NO_HUB_OPTIONS, HubOptions, hub_kwargs
from .recipe import ConfigError, TrainConfig

FLASH_ATTENTION = ("flash_attention_2", "flash_attention_3")


def world_size() -> int:
    """Training processes, from the launcher's environment (``accelerate launch``/``torchrun``); 1 otherwise."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """True on the global rank-0 process (and when not launched distributed)."""
    return int(os.environ.get("RANK", "0")) == 0


def require_extra(module: str, extra: str, what: str) -> None:
    """Raise `ConfigError` with the install command when the optional ``module`` is missing."""
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"{what} needs the `{module}` package (CUDA only): pip install 'gateau[{extra}]'")


def resolve_runtime(*, device: str = "auto", attn_impl: str = "auto", packing: str = "auto",
                    bf16: str = "auto") -> dict[str, object]:
    """Decide ``device``, ``attn_impl``, ``packing`` and ``bf16`` (each "auto" or a value) for this machine.

    auto: CUDA if present; flash-attention-2 on CUDA when `flash_attn` is installed, else sdpa; packing only with
    a flash-attention kernel (its varlen path makes packing pay; with sdpa the packed rows need a block mask and
    were slower here, see docs/train.md); bf16 on CUDA devices that support it.
    """
    import torch

    from gateau.models import resolve_device

    dev = resolve_device(device).type
    if attn_impl == "auto":
        attn_impl = "flash_attention_2" if dev == "cuda" and importlib.util.find_spec("flash_attn") else "sdpa"
    if packing not in ("auto", "on", "off"):
        raise ConfigError(f"--packing must be auto, on or off, got {packing!r}")
    use_packing = attn_impl in FLASH_ATTENTION if packing == "auto" else packing == "on"
    if bf16 not in ("auto", "on", "off"):
        raise ConfigError(f"--bf16 must be auto, on or off, got {bf16!r}")
    use_bf16 = (dev == "cuda" and torch.cuda.is_bf16_supported()) if bf16 == "auto" else bf16 == "on"
    return {"device": dev, "attn_impl": attn_impl, "packing": use_packing, "bf16": use_bf16}


def check_runtime(config: TrainConfig) -> None:
    """Refuse settings this machine cannot run, naming the extra to install."""
    if config.deepspeed:
        if config.device != "cuda":
            raise ConfigError("DeepSpeed needs CUDA GPUs; drop --deepspeed to train on CPU")
        require_extra("deepspeed", "deepspeed", "--deepspeed")
    if config.liger:
        if config.device != "cuda":
            raise ConfigError("Liger kernels need a CUDA GPU (Triton); drop --liger to train on CPU")
        require_extra("liger_kernel", "liger", "--liger")
    if config.attn_impl == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise ConfigError("--attn-impl flash_attention_2 needs the `flash-attn` package (CUDA only)")
    if config.lora_r is not None:
        require_extra("peft", "train", "--lora-r")


def model_window(spec: str, hub: HubOptions = NO_HUB_OPTIONS) -> int | None:
    """The model's ``max_position_embeddings`` from its config alone (no weights; ``hub``: revision and
    trust_remote_code)."""
    from pathlib import Path

    from transformers import AutoConfig

    from gateau.models import DEFAULT_MODEL, embedded_model_dir

    path = Path(spec)
    source, kwargs = (str(embedded_model_dir()), {}) if spec in (DEFAULT_MODEL, "") else (
        (str(path.parent), {"gguf_file": path.name}) if path.suffix.lower() == ".gguf" else (spec, {}))
    try:
        config = AutoConfig.from_pretrained(source, **kwargs, **hub_kwargs(spec, hub))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the config of model {spec!r}: {exc}") from exc
    return getattr(config, "max_position_embeddings", None)
