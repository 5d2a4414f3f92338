"""Hub options of every model load: which revision of a hub repository, and whether its own code may run.

Light (standard library only): the typed configs and the CLI parsers name `HubOptions` without importing torch.
`gateau.models` passes `hub_kwargs` to ``from_pretrained`` for the config, the tokenizer and the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REVISION_HELP = ("hub revision (branch, tag or commit) of every hub model this command loads (default: the default "
                 "branch); ignored for a local folder, a .gguf file and 'default', which load as they are on disk")
TRUST_REMOTE_CODE_HELP = ("let hub (or local) checkpoints that ship their own modelling code run it (off by default: "
                          "such checkpoints refuse to load); only for models you trust")


@dataclass(frozen=True)
class HubOptions:
    """How a model named by a hub id is fetched: ``revision`` (a branch, tag or commit of the hub repository; None =
    its default branch) and ``trust_remote_code`` (run the modelling code the checkpoint ships; off by default).
    Both go to the tokenizer and to the model. ``revision`` applies to hub ids only: a local folder, a .gguf file and
    ``default`` are loaded as they are on disk (a local folder has no revisions), so it is not passed for them;
    ``trust_remote_code`` is passed for local folders too (a saved checkpoint may ship its own code)."""

    revision: str | None = None
    trust_remote_code: bool = False


NO_HUB_OPTIONS = HubOptions()


def is_hub_id(spec: str | None) -> bool:
    """Whether ``spec`` names a hub repository: not ``default``, not a .gguf file, not an existing local path."""
    return bool(spec) and spec != "default" and Path(spec).suffix.lower() != ".gguf" and not Path(spec).exists()


def hub_kwargs(spec: str | None, hub: HubOptions = NO_HUB_OPTIONS) -> dict[str, object]:
    """The ``from_pretrained`` keyword arguments of ``hub`` for model ``spec`` (none when both are off, so a load
    without them calls transformers exactly as before): ``revision`` for a hub id, ``trust_remote_code`` when on."""
    out: dict[str, object] = {}
    if hub.revision is not None and is_hub_id(spec):
        out["revision"] = hub.revision
    if hub.trust_remote_code:
        out["trust_remote_code"] = True
    return out
