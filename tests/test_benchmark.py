import contextlib
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from tinycats.cli import main
from tinycats.core.solvers import model_calls
from tinycats.export import benchmark_report
from tinycats.export.benchmark import Backend, BenchmarkSettings, measure, onnx_files, run_benchmark, stats_ms
from tinycats.export.benchmark_report import PROCESS_PEAK, ROW_PEAK, PeakMemory, current_rss_bytes, format_table
from tinycats.export.onnx import export_onnx
from tinycats.export.onnx_sampler import OnnxModelError

from conftest import make_checkpoint


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
        assert gen["images"] == batch
        assert row["peak_rss_measure"] == ROW_PEAK and row["cuda_peak_allocated_mb"] is None
        assert row["peak_rss_mb"] >= row["rss_start_mb"] > 0  # the whole process: weights, arenas, earlier rows
        assert row["rss_growth_mb"] == pytest.approx(row["peak_rss_mb"] - row["rss_start_mb"])
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
    assert "peak RSS MB" in printed and "CUDA peak MB" not in printed


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


def holding(mib: int) -> Backend:
    """A backend whose row holds a buffer of `mib` MiB, touched, from its first forward to its end."""
    buffers = []

    def forward(batch: int) -> Callable[[], object]:
        buffers.append(np.ones(mib * 2**20 // 8))
        return lambda: buffers[-1][::4096].sum()

    return Backend(f"holding-{mib}", forward, lambda batch: lambda: None, 1, 1, torch.device("cpu"))


ONE_ROW = BenchmarkSettings(batch_sizes=(1,), num_warmup=0, num_runs=2)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="the per-row peak needs Linux's /proc/self/clear_refs")
def test_a_row_reports_its_absolute_peak_and_its_growth():
    before = current_rss_bytes() / 2**20
    row = measure(holding(200), 1, ONE_ROW)
    assert row["peak_rss_measure"] == ROW_PEAK and row["cuda_peak_allocated_mb"] is None
    assert row["peak_rss_mb"] >= before - 1 > 0  # 1 MiB: what the interpreter may free between the two readings
    assert row["rss_growth_mb"] >= 190
    assert row["rss_growth_mb"] == pytest.approx(max(0, row["peak_rss_mb"] - row["rss_start_mb"]))
    assert row["peak_rss_mb"] >= row["rss_start_mb"] + 190


def test_without_clear_refs_the_peak_is_the_process_peak(monkeypatch):
    monkeypatch.setattr(benchmark_report, "_reset_rss_peak", lambda: False)
    before = benchmark_report._maxrss_bytes() / 2**20
    row = measure(holding(8), 1, ONE_ROW)
    assert row["peak_rss_measure"] == PROCESS_PEAK and row["peak_rss_mb"] >= before > 0
    assert row["rss_growth_mb"] == pytest.approx(max(0, row["peak_rss_mb"] - row["rss_start_mb"]))
    assert "since it started" in format_table({"results": [row], "failures": {}})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_peak_counts_a_tensor_held_in_the_block():
    device = torch.device("cuda")
    with PeakMemory(device) as memory:
        block = torch.ones(200 * 2**20 // 4, device=device)
        del block
    result = memory.result()
    assert 200 <= result["cuda_peak_allocated_mb"] < 200 + torch.cuda.memory_allocated(device) / 2**20 + 1


def test_settings_are_checked():
    with pytest.raises(ValueError, match="batch sizes"):
        BenchmarkSettings(batch_sizes=(0, 4))
    assert BenchmarkSettings(num_runs=35).generation_runs == 3
