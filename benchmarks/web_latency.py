"""Latency of the browser generator (headless Chromium, onnxruntime-web on WASM, and on WebGPU
through SwiftShader, a CPU emulation: never a GPU figure) beside native onnxruntime in the same
run, for the demo model and for tinydit-128 (the record's network, exported with random weights:
its cost does not depend on what it learned).

    python benchmarks/web_latency.py --demo demo/hub --json benchmarks/results/web_latency.json

Each configuration (WASM with fp32/int8 at batch 1/4, the model's recommended sampler and 10 Euler
steps; WebGPU fp32 at batch 1 and 10 Euler steps) runs once untimed, then --runs times; the page
reports its own timings (the median network call and the whole generation, model loading
excluded). Native rows time `tinycats.onnx_sampler`
with the same threads. Needs `make web` and Chromium (`make test` installs both).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from tinycats import checkpoint
from tinycats.config import SampleConfig, load_config
from tinycats.core.model import TinyDiT
from tinycats.export import onnx_sampler
from tinycats.export.onnx import export_onnx
from tinycats.hub import layout
from tinycats.hub.stage import StageInputs, stage
from tinycats.web import make_server, serve_in_background

ROOT = Path(__file__).resolve().parents[1]


def random_model_folder(preset: str, work: Path) -> Path:
    """A repo folder for `preset` with random weights everywhere (so no layer is trivially zero)."""
    cfg = load_config(None, {"model": {"preset": preset}})
    torch.manual_seed(0)
    model = TinyDiT(cfg.model)
    for p in model.parameters():
        p.data.normal_(0, 0.02)
    ckpt = checkpoint.save_atomic(
        {"format": checkpoint.EMA_FORMAT, "step": 0, "model": model.state_dict(), "config": cfg.to_dict()},
        work / "dit_step_0_ema.pt",
    )
    exported = export_onnx(ckpt, work / "onnx" / "generator.onnx", quantize=True)
    stage(StageInputs(ckpt, exported.onnx), work / "hub")
    return work / "hub"


def configs(folder: Path) -> list[dict]:
    meta = json.loads((folder / layout.SIDECAR).read_text())
    samplers = {(meta["recommended_sampler"], meta["recommended_steps"]), ("euler", 10)}
    cfg = meta["recommended_cfg_scale"]
    wasm = [
        {"ep": "wasm", "precision": p, "n": n, "sampler": s, "steps": k, "cfg": cfg}
        for p in ("fp32", "int8")
        for n in (1, 4)
        for s, k in sorted(samplers)
    ]
    return [*wasm, {"ep": "webgpu", "precision": "fp32", "n": 1, "sampler": "euler", "steps": 10, "cfg": cfg}]


def browser(folder: Path, todo: list[dict], runs: int) -> list[dict]:
    server = make_server(str(folder), port=0)
    serve_in_background(server)
    try:
        args = json.dumps({"page": f"http://127.0.0.1:{server.server_address[1]}/", "runs": runs, "configs": todo})
        out = subprocess.run(["node", "bench/latency.mjs", args], cwd=ROOT / "web", capture_output=True, text=True, check=True)
    finally:
        server.shutdown()
    return json.loads(out.stdout.strip().splitlines()[-1])


def native(folder: Path, config: dict, runs: int, threads: int) -> dict:
    generator = onnx_sampler.load(folder / layout.ONNX[config["precision"]], threads=threads)
    settings = SampleConfig(sampler=config["sampler"], steps=config["steps"], cfg_scale=config["cfg"])
    labels = [0] * config["n"]
    c, s, _ = generator.image_shape
    x = torch.randn(config["n"], c, s, s).numpy()
    scale = torch.full((config["n"],), config["cfg"]).numpy()
    label_array = torch.zeros(config["n"], dtype=torch.long).numpy()

    def timed(fn, k: int) -> list[float]:
        fn()
        out = []
        for _ in range(k):
            start = time.perf_counter()
            fn()
            out.append((time.perf_counter() - start) * 1e3)
        return out

    calls = timed(lambda: generator.velocity(x, 0.5, label_array, scale), 10)
    whole = timed(lambda: onnx_sampler.sample(generator, labels, settings, batch_size=config["n"]), runs)
    return {"callMsMedian": statistics.median(calls), "generationMs": statistics.median(whole)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", type=Path, default=Path("demo/hub"), help="the demo's staged repo folder (default: demo/hub)")
    parser.add_argument("--runs", type=int, default=2, help="timed generations per configuration (default: 2)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="native onnxruntime threads (default: all CPUs)")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = {"tinydit-128 (random weights)": random_model_folder("tinydit-128", Path(tmp))}
        if (args.demo / layout.SIDECAR).is_file():
            meta = json.loads((args.demo / layout.CONFIG).read_text())
            models = {f"demo ({meta['preset']}, {meta['image_size']} px)": args.demo, **models}
        for name, folder in models.items():
            todo = configs(folder)
            for config, web in zip(todo, browser(folder, todo, args.runs)):
                ours = native(folder, config, args.runs, args.threads)
                rows.append({
                    "model": name, **config, "browser_status": web["status"],
                    "browser_ms_per_call": statistics.median(web["callMsMedian"]),
                    "browser_ms_per_image": statistics.median(web["generationMs"]) / config["n"],
                    "native_ms_per_call": ours["callMsMedian"], "native_ms_per_image": ours["generationMs"] / config["n"],
                    "calls": web["calls"],
                })  # fmt: skip
                r = rows[-1]
                print(
                    f"| {name} | {r['ep']} | {r['precision']} | {r['n']} | {r['sampler']} {r['steps']} | "
                    f"{r['browser_ms_per_call']:.1f} | "
                    f"{r['browser_ms_per_image']:.0f} | {r['native_ms_per_call']:.1f} | {r['native_ms_per_image']:.0f} |",
                    flush=True,
                )
    if args.json:
        env = {"cpu_count": os.cpu_count(), "native_threads": args.threads, "cpu": _cpu_name()}
        args.json.write_text(json.dumps({"environment": env, "rows": rows}, indent=2) + "\n")


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    main()
