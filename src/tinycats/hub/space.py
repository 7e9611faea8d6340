"""The browser page as a static Hugging Face Space: the built page, `server.json` naming the model
repo pinned to a commit (the page's default model, read the same way `tinycats web` serves it),
and a README whose YAML header declares `sdk: static` and the headers a threaded WASM page needs.
Static Spaces send the `custom_headers` of that header with every file, so the page is
cross-origin isolated there; on a host that cannot send them (GitHub Pages) it still runs, on one
thread, and its status line says why.

The upload is one commit through `HfApi` (the seam the tests replace with a recording fake), with
the token hygiene of hub/publish.py.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from tinycats.errors import HubError
from tinycats.hub import layout
from tinycats.hub.net import network_errors

SPACE_HEADERS = {
    "cross-origin-embedder-policy": "require-corp",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "cross-origin",
}
COMMIT = re.compile(r"^[0-9a-f]{40}$")


def pin(model: str, api: Any = None) -> tuple[str, str]:
    """hf://OWNER/REPO@REV -> (OWNER/REPO, the commit REV names); a 40-hex REV is taken as it is."""
    repo_id, revision = layout.parse_ref(model)
    if revision and COMMIT.match(revision):
        return repo_id, revision
    from huggingface_hub import HfApi

    try:
        return repo_id, (api or HfApi()).model_info(repo_id, revision=revision or "main").sha
    except network_errors() as exc:
        raise HubError(f"cannot resolve {model} to a commit ({type(exc).__name__}): give hf://{repo_id}@COMMIT_SHA") from None


def readme(space_id: str, repo_id: str, commit: str, title: str) -> str:
    header = {
        "title": title, "emoji": "🐈", "colorFrom": "yellow", "colorTo": "gray", "sdk": "static",
        "app_file": "index.html", "pinned": False, "models": [repo_id], "custom_headers": SPACE_HEADERS,
        "short_description": "Breed-conditional cats drawn in your browser (onnxruntime-web)",
    }  # fmt: skip
    return (
        f"---\n{yaml.safe_dump(header, sort_keys=False, allow_unicode=True)}---\n\n# {title}\n\n"
        f"A tiny diffusion transformer that draws cats by breed, running in your browser with onnxruntime-web "
        f"(WebGPU where the browser has a GPU adapter, else multi-threaded WASM). The model is "
        f"[{repo_id}](https://huggingface.co/{repo_id}) at commit `{commit[:12]}`, fetched by the page from the Hub; "
        f"the same seed gives the same cat as `tinycats sample --onnx`.\n\n"
        f"The headers above make the page cross-origin isolated, so WASM runs on every core; served without them "
        f"it runs on one thread and says so. Made with `tinycats space` for `{space_id}`.\n"
    )


def stage_space(model: str, space_id: str, out: str | Path, title: str | None = None, page: Path | None = None, api=None):
    """Write the Space folder OUT (page, server.json, README.md); return {relative path: bytes}."""
    from huggingface_hub import constants

    from tinycats.web import PAGE_DIR, page_files, require_page, server_json

    page = page or PAGE_DIR
    require_page(page)
    out = Path(out)
    if out.exists() and not (out / "server.json").is_file():
        raise HubError(f"{out} exists and is not a staged Space: choose another folder")
    repo_id, commit = pin(model, api)
    build = out.with_name(f".{out.name}.staging-{os.getpid()}")
    shutil.rmtree(build, ignore_errors=True)
    try:
        for url, (root, rel, _) in page_files(page).items():
            if url != "/":
                (build / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(root / rel, build / rel)
        model_url = f"{constants.ENDPOINT}/{repo_id}/resolve/{commit}/"
        (build / "server.json").write_bytes(server_json(model_url))
        (build / "README.md").write_text(readme(space_id, repo_id, commit, title or f"tinycats: {repo_id}"))
        shutil.rmtree(out, ignore_errors=True)
        os.replace(build, out)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return {p.relative_to(out).as_posix(): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}


def publish_space(folder: str | Path, space_id: str, token: str | None = None, api: Any = None) -> str:
    """Create the static Space if needed and make ONE commit of FOLDER; return the commit URL."""
    from huggingface_hub import HfApi, get_token

    from tinycats.hub.publish import scrub

    api = api if api is not None else HfApi(token=token)
    try:
        api.create_repo(space_id, repo_type="space", space_sdk="static", exist_ok=True)
        info = api.upload_folder(repo_id=space_id, repo_type="space", folder_path=str(folder), commit_message="tinycats page")
    except network_errors() as exc:
        reason = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, token or get_token())
        raise HubError(f"upload to the Space {space_id} failed ({reason}); the staged folder {folder} is kept") from None
    return info.commit_url
