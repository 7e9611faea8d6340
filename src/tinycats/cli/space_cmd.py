"""tinycats space: the browser page as a static Hugging Face Space that reads a published model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "space",
        help="publish the browser page as a static Hugging Face Space (or stage it with --dry-run)",
        description="Stage a static Space: the built page, server.json naming the model repo pinned to a commit (the "
        "page's default model) and a README whose YAML header declares sdk: static and the COOP/COEP/CORP headers "
        "multi-threaded WASM needs; then make ONE commit to the Space (docs/web.md).",
    )
    p.add_argument("--model", required=True, metavar="hf://OWNER/REPO@REV", help="the model repo; REV is pinned to its commit")
    p.add_argument("--space-id", required=True, metavar="OWNER/NAME", help="the Space to create or update")
    p.add_argument("--title", help="the Space's title (default: tinycats: OWNER/REPO)")
    p.add_argument("--token", help="a Hub token with write access (default: $HF_TOKEN or the `hf auth login` token)")
    p.add_argument("--dry-run", type=Path, metavar="DIR", help="stage into DIR and stop: nothing is sent")
    p.add_argument("--stage-dir", type=Path, metavar="DIR", help="where to stage before uploading (default: space/OWNER--NAME)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tinycats.cli.common import validate_repo_id
    from tinycats.hub.space import publish_space, stage_space

    validate_repo_id(args.space_id, "--space-id")
    folder = args.dry_run or args.stage_dir or Path("space") / args.space_id.replace("/", "--")
    files = stage_space(args.model, args.space_id, folder, args.title)
    print(f"staged {folder}: {len(files)} files, {sum(files.values()) / 1e6:.2f} MB")
    print(f"  default model: {json.loads((folder / 'server.json').read_text())['model']}")
    if args.dry_run:
        print("dry run: nothing was uploaded")
        return 0
    print(f"committed {publish_space(folder, args.space_id, args.token)}")
    return 0
