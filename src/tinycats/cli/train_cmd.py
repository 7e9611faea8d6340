"""tinycats train: the record's training command, with its presets and flags."""

from __future__ import annotations

import argparse

import yaml

from tinycats.cli.common import add_device, output_path


def register(sub: argparse._SubParsersAction) -> None:
    from tinycats.config import AUGMENTATION_LEVELS, MODEL_PRESETS, PRECISIONS, PREDICTIONS, TIME_SAMPLINGS, preset_names

    p = sub.add_parser(
        "train",
        help="train a TinyDiT on an image folder",
        description=(
            "Train with flow matching on DATA_DIR/train/<Class>/* (or DATA_DIR/<Class>/*). Settings come from "
            "--config, then from the flags given. Writes CHECKPOINT_DIR/dit_step_N.pt (full state, for --resume) and "
            "dit_step_N_ema.pt (EMA weights, for sampling), LOG_DIR/training.log, metrics.jsonl, samples/ and tensorboard/."
        ),
    )
    p.add_argument("data_dir", metavar="DATA_DIR", help="image folder, e.g. data/cats")
    p.add_argument(
        "--config", default="cpu-demo", help=f"preset name ({', '.join(preset_names())}) or a YAML file (default: cpu-demo)"
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved settings as YAML and exit")
    p.add_argument(
        "--resume", metavar="PATH|auto", help="continue from a dit_step_N.pt; 'auto' = the latest in --checkpoint-dir, if any"
    )
    p.add_argument(
        "--allow-data-change",
        action="store_true",
        help="resume even though DATA_DIR is not the checkpoint's data (the resume is then not exact)",
    )
    p.add_argument("--checkpoint-dir", default="checkpoints", help="where checkpoints go (default: checkpoints)")
    p.add_argument("--log-dir", default="outputs", help="where logs and sample grids go (default: outputs)")
    add_device(p)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, help="progress bar (default: only on a terminal)")

    m = p.add_argument_group("model (override the preset)")
    m.add_argument("--model", choices=sorted(MODEL_PRESETS), help="architecture preset")
    m.add_argument("--image-size", type=int, help="training resolution in pixels (a multiple of the patch size)")
    m.add_argument("--prediction", choices=PREDICTIONS, help="network target: clean image x (default) or velocity v")

    t = p.add_argument_group("training (override the preset)")
    t.add_argument("--steps", type=int, help="optimizer steps in total (when resuming: the new total)")
    t.add_argument("--batch-size", type=int, help="images per micro-batch, summed over all processes (global)")
    t.add_argument(
        "--gradient-accumulation-steps", type=int, help="micro-batches per optimizer step; effective batch = batch size x this"
    )
    t.add_argument("--lr", type=float, help="peak learning rate (AdamW)")
    t.add_argument("--warmup-steps", type=int, help="linear warm-up steps before the cosine decay")
    t.add_argument(
        "--augmentation-level",
        choices=AUGMENTATION_LEVELS,
        help="none; basic = flip; full = flip + mild crop + mild colour jitter",
    )
    t.add_argument("--ema-beta", type=float, help="EMA decay once warmed up, e.g. 0.9999")
    t.add_argument(
        "--ema-sigma-rel",
        type=float,
        help="EDM2's power-function EMA of this relative width instead of --ema-beta (0 = off; EDM2 uses 0.05-0.15)",
    )
    t.add_argument("--label-dropout", type=float, help="fraction of labels replaced by the null label (for guidance)")
    t.add_argument("--time-sampling", choices=TIME_SAMPLINGS, help="distribution of training times")
    t.add_argument("--checkpoint-interval", type=int, help="save every N steps (0 = only at the end)")
    t.add_argument(
        "--keep-last", type=int, help="keep only the newest K checkpoints, deleting older ones (0 = keep all; 2 is safe)"
    )
    t.add_argument("--keep-every", type=int, help="with --keep-last: also keep every checkpoint whose step is a multiple of N")
    t.add_argument("--sample-interval", type=int, help="write a sample grid every N steps (0 = only at the end)")
    t.add_argument("--log-interval", type=int, help="log metrics every N steps")
    t.add_argument("--seed", type=int, help="seed of every random draw")
    t.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="auto (default) = bf16 autocast on CUDA; on a CPU bf16 where a short probe at the start measures it "
        "faster (AMX or AVX-512 BF16), else fp32. The choice is logged and saved in every checkpoint",
    )
    t.add_argument("--compile", action=argparse.BooleanOptionalAction, help="torch.compile the network")
    t.add_argument(
        "--skip-bad-images",
        action=argparse.BooleanOptionalAction,
        help="skip unreadable images (with a warning) instead of stopping",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, on_checkpoint=None) -> int:
    from tinycats.training import launch
    from tinycats.training.loop import train

    for flag, folder in (("--checkpoint-dir", args.checkpoint_dir), ("--log-dir", args.log_dir)):
        output_path(flag, folder, folder=True)
    cfg, state = launch.resolve(args.config, vars(args), args.resume, args.checkpoint_dir)
    if args.print_config:
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
        return 0
    if state and state["step"] >= cfg.train.steps:
        print(f"already at step {state['step']} >= --steps {cfg.train.steps}; nothing to do")
        return 0
    result = train(
        cfg,
        args.data_dir,
        args.checkpoint_dir,
        args.log_dir,
        state,
        args.device,
        args.progress,
        on_checkpoint,
        args.allow_data_change,
    )
    if result.main_process:
        print(
            f"trained to step {result.step} (loss {result.loss:.4f}, {result.seconds:.0f}s); sample with:\n"
            f"  tinycats sample --checkpoint {result.ema_checkpoint} --all-breeds"
        )
    return 0
