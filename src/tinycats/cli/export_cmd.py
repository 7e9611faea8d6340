"""tinycats export-onnx: the EMA network as one guided sampling step in ONNX (+ int8), checked."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export-onnx",
        help="export the generator to ONNX (one guided step; optional int8)",
        description="Write OUTPUT (+ OUTPUT.json metadata): inputs x [B,3,H,W], t [B], label [B] int64, cfg_scale [B]; "
        "output the guided velocity v [B,3,H,W]. Guidance is inside the graph: apply it nowhere else.",
    )
    p.add_argument("--checkpoint", required=True, help="dit_step_N_ema.pt, dit_step_N.pt, a Hub folder or hf://OWNER/REPO")
    p.add_argument("--output", default="generator.onnx", help="the fp32 ONNX file to write (default: generator.onnx)")
    p.add_argument("--quantize", action="store_true", help="also write OUTPUT_int8.onnx (dynamic quantisation, int8 weights)")
    p.add_argument("--opset", type=int, help="ONNX opset, 18 or newer (default: 20)")
    p.add_argument(
        "--verify",
        action="store_true",
        help="compare with PyTorch: one step on random inputs (fp32 must agree to 1e-4) and a whole sampling run",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tinycats.cli.common import output_path
    from tinycats.export.onnx import FP32_TOLERANCE, export_onnx

    opset = {"opset": args.opset} if args.opset else {}
    exported = export_onnx(
        args.checkpoint, output_path("--output", args.output), quantize=args.quantize, verify=args.verify, **opset
    )
    for name, size in exported.sizes.items():
        shown = f"{size / 1e6:.2f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"
        print(f"wrote {exported.onnx.parent / name} ({shown})")
    check = exported.verification
    if check:
        print(f"fp32: max |v_onnx - v_torch| = {check.fp32_max_error:.2e} on one guided step (limit {FP32_TOLERANCE:.0e})")
        if check.int8_max_error is not None:
            print(f"int8: max |v_onnx - v_torch| = {check.int8_max_error:.2e} on one step (|v| <= {check.velocity_max:.1f})")
        for kind, drift in check.drift.items():
            print(
                f"{kind}: final images vs PyTorch (same seed and sampler): max {drift.max_abs:.0f} levels, "
                f"mean {drift.mean_abs:.3f} levels of 255 (max {drift.max_abs_float:.1e} before rounding, on [-1, 1])"
            )
    return 0
