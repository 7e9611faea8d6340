"""tinycats evaluate: the record's evaluate_full.py: FID/KID/IS/precision-recall, breed accuracy,
FD-classifier and a memorisation check, written to a JSON + Markdown report."""

from __future__ import annotations

import argparse

from tinycats.cli.common import add_device, add_sampler, output_path, sample_overrides

METRIC_FLAGS = {"compute_fid": "fid", "compute_kid": "kid", "compute_is": "is", "compute_precision_recall": "prc"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="measure a checkpoint: FID, KID, IS, precision/recall, breed accuracy, memorisation",
        description=(
            "Compare generated images with real ones and write REPORT (JSON), REPORT.md and pictures beside it. "
            "Without any --compute-*/--breed-accuracy flag, every metric that can be computed is: Inception metrics "
            "when the weights file is there, classifier metrics when --classifier is given; the others are listed as "
            "skipped with the reason. A metric asked for by flag that cannot be computed is an error."
        ),
    )
    p.add_argument("--checkpoint", required=True, help="dit_step_N_ema.pt, dit_step_N.pt, a Hub folder or hf://OWNER/REPO")
    p.add_argument(
        "--real-dir",
        required=True,
        help="real images: an ImageFolder split (data/cats/test) or a data set (data/cats = its test/)",
    )
    g = p.add_argument_group("generated images")
    g.add_argument("--generate-samples", action="store_true", help="sample from the checkpoint (else read --fake-dir)")
    g.add_argument(
        "--num-samples",
        type=int,
        default=500,
        help="images to generate IN TOTAL, class-balanced (image i is of class i mod C); with --all-breeds: PER BREED "
        "(default: 500)",
    )
    g.add_argument("--all-breeds", action="store_true", help="make --num-samples count per breed (as in `tinycats sample`)")
    g.add_argument(
        "--fake-dir",
        help="where generated PNGs are written (--generate-samples) or read from, as DIR/<Class>/<Class>_<i>.png "
        "(default: <report stem>_samples next to the report)",
    )
    m = p.add_argument_group("metrics")
    m.add_argument("--compute-fid", action="store_true", help="Fréchet Inception Distance (torch-fidelity)")
    m.add_argument("--compute-kid", action="store_true", help="Kernel Inception Distance, mean and std over subsets")
    m.add_argument("--compute-is", action="store_true", help="Inception Score of the generated images")
    m.add_argument(
        "--compute-precision-recall", action="store_true", help="precision and recall (k=3) in Inception feature space"
    )
    m.add_argument(
        "--breed-accuracy", action="store_true", help="per-breed accuracy of the generated images (needs --classifier)"
    )
    m.add_argument(
        "--classifier",
        help="a breed classifier from `tinycats train-classifier`: breed accuracy, FD-classifier and the memorisation check",
    )
    m.add_argument("--train-dir", help="training images for the memorisation check (default: the real split's sibling train/)")
    m.add_argument(
        "--inception-weights",
        help="the FID Inception weights file (default: torch hub's cache, where torch-fidelity would download it)",
    )
    o = p.add_argument_group("report")
    o.add_argument("--report-path", default="evaluation_report.json", help="JSON report; REPORT.md goes beside it")
    o.add_argument("--baseline", metavar="OLD_REPORT", help="an earlier report: each metric's change in %% goes in the report")
    o.add_argument(
        "--log-dir",
        help="training log folder with metrics.jsonl for the loss plot (default: <checkpoint dir>/../outputs, else outputs)",
    )
    o.add_argument("--progress", action="store_true", help="show progress bars for sampling and feature extraction")
    add_sampler(p)
    add_device(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tinycats.evaluate.report import group_skipped
    from tinycats.evaluate.run import EvalSettings, evaluate

    chosen = [name for flag, name in METRIC_FLAGS.items() if getattr(args, flag)]
    if args.breed_accuracy:
        chosen.append("breed_accuracy")
    overrides = sample_overrides(args)
    output_path("--report-path", args.report_path)
    if args.generate_samples and args.fake_dir:
        output_path("--fake-dir", args.fake_dir, folder=True)
    settings = EvalSettings(
        checkpoint=args.checkpoint,
        real_dir=args.real_dir,
        generate_samples=args.generate_samples,
        num_samples=args.num_samples,
        per_breed=args.all_breeds,
        fake_dir=args.fake_dir,
        metrics=tuple(chosen) or None,
        classifier=args.classifier,
        train_dir=args.train_dir,
        sampler=overrides["sampler"],
        steps=overrides["steps"],
        cfg_scale=overrides["cfg_scale"],
        guidance_interval=overrides["guidance_interval"],
        seed=args.seed,
        batch_size=args.batch_size,
        device=args.device,
        report_path=args.report_path,
        baseline=args.baseline,
        inception_weights=args.inception_weights,
        log_dir=args.log_dir,
        progress=args.progress,
    )
    report = evaluate(settings)
    data = report["data"]
    print(f"{data['n_generated']} generated vs {data['n_real']} real images ({report['wall_time_s']:.0f} s)")
    for key, value in report["metrics"].items():
        if value is not None:
            print(f"  {key:<28} {value:.5g}")
    for reason, keys in group_skipped(report["skipped"]).items():
        print(f"skipped {', '.join(keys)}: {reason}")
    for warning in report["warnings"]:
        print(f"warning: {warning}")
    print(f"report: {settings.report_path} and {settings.report_path.removesuffix('.json')}.md")
    return 0
