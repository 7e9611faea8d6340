import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from test_export import make_checkpoint
from tinycats.benchmark import BenchmarkSettings, onnx_files, run_benchmark, stats_ms
from tinycats.benchmark_report import PeakMemory
from tinycats.cli import main
from tinycats.export import export_onnx
from tinycats.onnx_sampler import OnnxModelError
from tinycats.solvers import model_calls


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    ckpt = make_checkpoint(root / "dit_step_7_ema.pt")
    return ckpt, export_onnx(ckpt, root / "generator.onnx", quantize=True).onnx


def test_benchmark_report_is_complete_and_consistent(files, tmp_path):
    ckpt, onnx_path = files
    report_path = tmp_path / "out" / "benchmark_report.json"
    args = ["benchmark", "--model", str(ckpt), "--onnx", str(onnx_path), "--device", "cpu", "--threads", "1", "--no-compile"]
    args += ["--num-warmup", "1", "--num-runs", "3", "--batch-sizes", "1,2", "--steps", "2", "--benchmark-throughput"]
    text, threads = io.StringIO(), torch.get_num_threads()
    try:
        with contextlib.redirect_stdout(text):
            assert main([*args, "--report-path", str(report_path)]) == 0
    finally:
        torch.set_num_threads(threads)  # --threads is process-wide
    report = json.loads(report_path.read_text())
    rows = {(r["backend"], r["batch_size"]): r for r in report["results"]}
    assert set(rows) == {(b, n) for b in ("pytorch-eager", "onnx-fp32", "onnx-int8") for n in (1, 2)} | {("pytorch-naive", 1)}
    assert report["failures"] == {}
    calls = model_calls("heun", 2)  # the checkpoint recommends heun; --steps 2 overrides its steps
    assert report["settings"]["sampler"] == "heun" and report["settings"]["steps"] == 2 and calls == 3
    for (backend, batch), row in rows.items():
        fwd, gen = row["forward_ms"], row["generation"]
        assert 0 < fwd["median"] <= fwd["p95"] <= fwd["p99"] and fwd["runs"] == 3
        assert 0 < gen["ms"]["median"] <= gen["ms"]["p95"] <= gen["ms"]["p99"]
        assert gen["images"] == batch and row["peak_memory_mb"] >= 0
        assert row["images_per_s"] == pytest.approx(batch / (gen["ms"]["median"] / 1e3))
        assert gen["ms_per_image"] == pytest.approx(gen["ms"]["median"] / batch)
        if backend == "pytorch-naive":
            assert (gen["steps"], gen["forwards"], row["rows_per_forward"]) == (50, 100, 1)
        else:
            assert (gen["steps"], gen["forwards"], row["rows_per_forward"]) == (2, calls, 2 * batch)
    assert report["backends"]["onnx-int8"]["quantization"].startswith("int8")
    assert report["backends"]["onnx-fp32"]["checkpoint_sha256"] == report["model"]["checkpoint_sha256"]
    assert report["files"][str(onnx_path)] == onnx_path.stat().st_size
    env = report["environment"]
    assert env["torch"] == torch.__version__ and env["onnxruntime"] and env["torch_threads"] >= 1
    assert report["model"]["preset"] == "tinydit-test" and report["model"]["parameters"] > 0
    printed = text.getvalue()
    assert "onnx-int8" in printed and "pytorch-naive" in printed and str(report_path) in printed


def test_a_failing_compile_is_recorded_not_fatal(files, monkeypatch):
    def broken(module, *args, **kwargs):
        def fail(*a, **k):
            raise RuntimeError("no C++ compiler found")

        return fail

    monkeypatch.setattr(torch, "compile", broken)
    settings = BenchmarkSettings(steps=1, sampler="euler", batch_sizes=(1,), num_warmup=0, num_runs=1)
    report = run_benchmark(files[0], settings, device="cpu", progress=lambda _: None)
    assert report["failures"] == {"pytorch-compiled": "RuntimeError: no C++ compiler found"}
    assert {r["backend"] for r in report["results"]} == {"pytorch-eager", "pytorch-naive"}


def test_onnx_files_adds_the_int8_sibling_and_refuses_missing_files(files, tmp_path):
    fp32 = files[1]
    int8 = fp32.with_name("generator_int8.onnx")
    assert onnx_files([fp32]) == [fp32, int8]
    assert onnx_files([int8, fp32]) == [int8, fp32]
    with pytest.raises(OnnxModelError, match="does not exist"):
        onnx_files([tmp_path / "nope.onnx"])


def test_statistics_are_percentiles_in_milliseconds():
    s = stats_ms([i / 1000 for i in range(1, 101)])  # 1 ms ... 100 ms
    assert s["median"] == pytest.approx(50.5) and s["p95"] == pytest.approx(95.05) and s["p99"] == pytest.approx(99.01)
    assert s["runs"] == 100


def test_peak_memory_sees_a_large_allocation():
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("the per-block peak needs Linux's /proc/self/clear_refs")
    with PeakMemory(torch.device("cpu")) as memory:
        block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
        del block
    result = memory.result()
    assert result["memory_measure"] == "rss_peak_growth"
    assert result["peak_memory_mb"] > 48


def test_settings_are_checked():
    with pytest.raises(ValueError, match="batch sizes"):
        BenchmarkSettings(batch_sizes=(0, 4))
    assert BenchmarkSettings(num_runs=35).generation_runs == 3
