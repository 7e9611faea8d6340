"""tinycats benchmark: inference latency, throughput and memory per backend (the record's
benchmark_inference.py)."""

from __future__ import annotations

import argparse
import json

from tinycats.cli.common import add_sampler_settings, output_path, sample_overrides


def batch_sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(b) for b in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"batch sizes are comma-separated integers, e.g. 1,4,8,16, not {text!r}") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark",
        help="time one guided step and whole-image generation per backend and batch size",
        description="Backends: PyTorch eager, torch.compile, each --onnx file (its _int8 sibling too) and the naive "
        "procedure (50 Euler steps, conditional and unconditional as two forwards, batch 1). Prints a table, writes JSON.",
    )
    p.add_argument("--model", required=True, help="the checkpoint: dit_step_N_ema.pt, dit_step_N.pt or a Hub folder")
    p.add_argument("--onnx", nargs="+", default=[], metavar="PATH", help="exported generator.onnx file(s) to time as well")
    p.add_argument("--device", default="auto", help="where PyTorch runs: auto, cpu, cuda or cuda:N; ONNX runs on the CPU")
    p.add_argument("--num-warmup", type=int, default=10, help="untimed calls before timing (default: 10)")
    p.add_argument("--num-runs", type=int, default=100, help="timed forwards per backend and batch size (default: 100)")
    p.add_argument(
        "--generation-runs", type=int, default=0, help="timed whole sampling runs (default: num-runs / 10, at least 1)"
    )
    p.add_argument("--benchmark-throughput", action="store_true", help="also report images/s of whole-image generation")
    p.add_argument("--batch-sizes", type=batch_sizes, default=(1, 4, 8, 16), help="comma-separated (default: 1,4,8,16)")
    add_sampler_settings(p)
    p.add_argument("--threads", type=int, help="CPU threads for PyTorch and onnxruntime (default: PyTorch's)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile backend")
    p.add_argument("--report-path", default="benchmark_report.json", help="JSON report (default: benchmark_report.json)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tinycats.export.benchmark import BenchmarkSettings, run_benchmark
    from tinycats.export.benchmark_report import format_table

    report_path = output_path("--report-path", args.report_path)
    settings = BenchmarkSettings(
        **sample_overrides(args),
        batch_sizes=args.batch_sizes,
        num_warmup=args.num_warmup,
        num_runs=args.num_runs,
        generation_runs=args.generation_runs,
        throughput=args.benchmark_throughput,
        compile=not args.no_compile,
    )
    report = run_benchmark(args.model, settings, onnx=args.onnx, device=args.device, threads=args.threads)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    print(format_table(report))
    print(f"report: {args.report_path}")
    return 0
