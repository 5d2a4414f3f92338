"""``--push-to-hub REPO``: upload a finished model folder to the Hugging Face Hub with `huggingface_hub`.

The repository is created if needed (``create_repo(exist_ok=True)``) and the folder uploaded in one commit
(``upload_folder``), model card and provenance included, ``checkpoint-*`` folders left out. The endpoint is
``$HF_ENDPOINT`` (default huggingface.co); the token is the stored one (``hf auth login``) or ``$HF_TOKEN``.
With ``HF_HUB_OFFLINE=1`` the push is refused before training starts.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import GateauError

IGNORED = ["checkpoint-*", "checkpoint-*/**"]


class HubPushError(GateauError):
    """The model folder could not be uploaded (offline, no token, no rights, endpoint unreachable)."""


def check_can_push(repo: str | None) -> None:
    """HubPushError when a push is asked for but huggingface_hub is in offline mode."""
    if repo is None:
        return
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise HubPushError(f"--push-to-hub {repo}: HF_HUB_OFFLINE is set, so nothing can be uploaded; unset it, or "
                           "train without --push-to-hub and upload later with `hf upload REPO OUT`")


def push_folder(out: str | Path, repo: str, *, message: str) -> str:
    """Create ``repo`` if needed and upload ``out`` (checkpoints left out) in one commit; returns the commit URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi()
    try:
        api.create_repo(repo, repo_type="model", exist_ok=True)
        commit = api.upload_folder(repo_id=repo, repo_type="model", folder_path=str(out), commit_message=message,
                                   ignore_patterns=IGNORED)
    except (HfHubHTTPError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HubPushError(f"--push-to-hub {repo}: upload failed ({first}); the model is saved in {out}: log in with "
                           f"`hf auth login` (or set HF_TOKEN) and run `hf upload {repo} {out}`") from exc
    return str(commit.commit_url)
