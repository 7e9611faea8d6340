"""tinycats upload: publish a checkpoint, its ONNX files, reports and samples as one Hub commit."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upload",
        help="publish a model version to the Hugging Face Hub (or stage it with --dry-run)",
        description="Stage the repo folder (config.json + model.safetensors, onnx/, reports/, samples/, README.md: "
        "docs/hub.md), check that every file describes the same weights, then make ONE commit. What is not given is absent.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--generator", type=Path, metavar="CKPT", help="dit_step_N_ema.pt or dit_step_N.pt (its EMA weights)")
    source.add_argument("--staged", type=Path, metavar="DIR", help="upload a folder staged before (after a failed upload)")
    p.add_argument("--onnx-generator", type=Path, metavar="ONNX", help="generator.onnx; its _int8 sibling is taken along")
    p.add_argument("--evaluation-report", type=Path, metavar="JSON", help="evaluation_report.json of this checkpoint")
    p.add_argument("--benchmark-report", type=Path, metavar="JSON", help="benchmark_report.json of this checkpoint")
    p.add_argument("--samples-dir", type=Path, metavar="DIR", help="a `tinycats sample` output folder (overview + grids)")
    p.add_argument("--repo-id", metavar="OWNER/REPO", help="the model repo (required unless --dry-run)")
    p.add_argument("--space-id", metavar="OWNER/NAME", help="the Space showing this model (`tinycats space`): the card links it")
    p.add_argument("--commit-message", default="Upload tinycats model", help="(default: %(default)s)")
    p.add_argument("--revision", "--branch", dest="revision", metavar="BRANCH", help="commit to this branch (made if new)")
    p.add_argument("--private", action="store_true", help="create the repo as private (an existing repo keeps its setting)")
    p.add_argument("--token", help="a Hub token with write access (default: $HF_TOKEN or the `hf auth login` token)")
    p.add_argument("--dry-run", type=Path, metavar="DIR", help="stage into DIR, check it and stop: nothing is sent")
    p.add_argument("--stage-dir", type=Path, metavar="DIR", help="where to stage before uploading (default: hub/OWNER--REPO)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tinycats.cli.common import validate_repo_id
    from tinycats.errors import HubError
    from tinycats.hub.check import check
    from tinycats.hub.publish import publish
    from tinycats.hub.stage import StageInputs, stage

    if args.space_id:
        validate_repo_id(args.space_id, "--space-id")
    if args.repo_id:
        validate_repo_id(args.repo_id, "--repo-id")
    elif not args.dry_run:
        raise HubError("--repo-id OWNER/REPO is needed to upload (or stage only, with --dry-run DIR)")
    if args.staged:
        if (
            args.dry_run
            or args.stage_dir
            or any((args.onnx_generator, args.evaluation_report, args.benchmark_report, args.samples_dir, args.space_id))
        ):
            raise HubError("--staged uploads a folder as it is: it takes no --dry-run, --stage-dir, --space-id or input files")
        folder, files = args.staged, check(args.staged)
    else:
        folder = args.dry_run or args.stage_dir or Path("hub") / args.repo_id.replace("/", "--")
        inputs = StageInputs(
            args.generator, args.onnx_generator, args.evaluation_report, args.benchmark_report, args.samples_dir,
            args.repo_id, args.space_id,
        )  # fmt: skip
        files = stage(inputs, folder)
    total = sum(files.values())
    print(f"staged {folder}: {len(files)} files, {total / 1e6:.2f} MB")
    for rel, size in files.items():
        print(f"  {rel:40s} {size / 1e6:9.3f} MB")
    if args.dry_run:
        print("dry run: nothing was uploaded")
        return 0
    published = publish(folder, args.repo_id, args.commit_message, args.revision, args.private, args.token)
    print(f"committed {published.commit_url}")
    print(f"browser page model URL (pinned): {published.base_url}")
    print(f"recorded in {published.record}")
    return 0
