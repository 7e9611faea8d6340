"""The upload: one commit of a checked, staged folder, and a record of where it went.

`HfApi` is the one seam that touches the network; tests pass a recording fake for it. The token
goes to the client and nowhere else: it is never printed, logged or written, and is scrubbed from
any error text that might quote it. A failure leaves the staged folder in place, with the command
that retries it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tinycats.errors import HubError
from tinycats.hub import layout
from tinycats.hub.check import check
from tinycats.hub.net import network_errors


@dataclass
class Published:
    repo_id: str
    revision: str
    commit_url: str
    commit_sha: str
    base_url: str  # the pinned folder URL the browser page takes as `model`
    record: Path


def record_path(folder: str | Path) -> Path:
    """Beside the staged folder, not in it: a commit cannot contain its own URL."""
    folder = Path(folder)
    return folder.with_name(f"{folder.name}.commit.json")


def base_url(repo_id: str, commit_sha: str) -> str:
    from huggingface_hub import hf_hub_url

    return hf_hub_url(repo_id, layout.CONFIG, revision=commit_sha).removesuffix(layout.CONFIG)


def publish(
    folder: str | Path,
    repo_id: str,
    commit_message: str,
    revision: str | None = None,
    private: bool = False,
    token: str | None = None,
    api: Any = None,
) -> Published:
    """Check FOLDER again, then create the repo (if needed), the branch (if named) and ONE commit."""
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HFValidationError

    folder = Path(folder)
    check(folder)
    api = api if api is not None else HfApi(token=token)
    branch = revision or "main"
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if branch != "main":
            api.create_branch(repo_id, branch=branch, exist_ok=True, repo_type="model")
        info = api.upload_folder(
            repo_id=repo_id, folder_path=str(folder), commit_message=commit_message, revision=branch, repo_type="model"
        )
    except (*network_errors(), HFValidationError) as exc:
        text = str(exc).strip()
        reason = scrub(text.splitlines()[0] if text else type(exc).__name__, token or get_token())
        retry = f"tinycats upload --staged {folder} --repo-id {repo_id}" + (f" --revision {revision}" if revision else "")
        raise HubError(f"upload to {repo_id} failed ({reason}); the staged folder is kept: retry with `{retry}`") from None
    published = Published(repo_id, branch, info.commit_url, info.oid, base_url(repo_id, info.oid), record_path(folder))
    fields = {k: v for k, v in asdict(published).items() if k != "record"}
    published.record.write_text(json.dumps(fields, indent=2) + "\n")
    return published


def scrub(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text
