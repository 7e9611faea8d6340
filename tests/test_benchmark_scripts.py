"""The benchmark scripts run as documented (python benchmarks/X.py ... --json out.json) and their JSON
says what their docstrings claim: run on the tiny preset, a couple of steps, on the CPU."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tinycats.config import ModelConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--model", "tinydit-test", "--device", "cpu"]


def run_script(name: str, args: list[str], out: Path) -> dict:
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args, "--json", str(out)], cwd=ROOT, check=True)
    return json.loads(out.read_text())


def training_flops_per_image(m: ModelConfig) -> float:
    """Forward + backward FLOPs of one image, from the architecture alone (2 per multiply-add).

    Every nn.Linear costs 2·in·out per row forward and twice that backward (input and weight
    gradients), except the two whose input needs no gradient (the patch embedding and the first
    layer on the timestep sinusoids): weight gradient only. Rows are tokens, or one per image for
    the conditioning (timestep MLP, adaLN). Attention is QKᵀ and AV, 4·T²·d forward per block;
    PyTorch counts its fused backward as 2.5x that (the kernel recomputes the scores), the plain
    math as 2x: the test's 2 % tolerance covers either, not attention left out (~8 % here)."""
    d, pixels, inner = m.hidden_size, m.patch_size**2 * m.in_channels, int(m.hidden_size * m.mlp_ratio)
    tokens = (m.image_size // m.patch_size) ** 2
    no_input_grad = 2 * pixels * d * tokens + 2 * 256 * d
    per_token = tokens * (m.depth * 2 * (3 * d * d + d * d + 2 * d * inner) + 2 * d * pixels)
    per_image = 2 * d * d + m.depth * 2 * d * 6 * d + 2 * d * 2 * d
    attention = m.depth * 4 * tokens**2 * d
    return 2 * no_input_grad + 3 * (per_token + per_image) + 3.5 * attention


def check_training(r: dict, batch: int) -> None:
    for key in ("s_per_step", "img_per_s", "flops_per_step", "flops_per_s", "peak_flops_per_s", "mfu"):
        assert math.isfinite(r[key]) and r[key] > 0, key
    assert r["batch_size"] == batch and r["device"] == "cpu" and r["precision"] == "fp32"
    assert r["mfu"] < 1  # no step can beat the matmul peak measured in the same run: the peak is real
    model = load_config(None, {"model": {"preset": r["model"]}}).model
    assert r["flops_per_step"] / batch == pytest.approx(training_flops_per_image(model), rel=0.02)


def test_train_throughput_reports_counted_flops_and_mfu(tmp_path):
    r = run_script("train_throughput.py", [*TINY, "--batch-size", "2", "--steps", "2", "--warmup", "1"], tmp_path / "t.json")
    assert r["model"] == "tinydit-test" and r["steps_timed"] == 2
    check_training(r, batch=2)


def test_train_throughput_measures_the_model_settings_it_is_given(tmp_path):
    args = [*TINY, "--batch-size", "2", "--steps", "1", "--warmup", "1", "--image-size", "32", "--patch-size", "8"]
    r = run_script("train_throughput.py", [*args, "--embed", "conv", "--decoder", "pixel"], tmp_path / "t.json")
    assert (r["image_size"], r["patch_size"], r["embed"], r["decoder"]) == (32, 8, "conv", "pixel")
    assert r["img_per_s"] > 0 and r["flops_per_step"] > 0


def test_data_throughput_ratio_is_data_over_training(tmp_path):
    args = [*TINY, "--batch-size", "8", "--train-batch-size", "2", "--num-images", "16", "--runs", "2", "--train-steps", "1"]
    r = run_script("data_throughput.py", args, tmp_path / "d.json")
    data = r["data"]
    assert r["augmentation_level"] == "full" and (data["batch_size"], data["image_size"]) == (8, 16)
    assert math.isfinite(data["img_per_s"]) and data["img_per_s"] > 0
    check_training(r["training"], batch=2)


def test_corruption_sweep_finds_every_damaged_checkpoint(tmp_path):
    result = run_script("corruption_sweep.py", ["--flips", "40", "--cuts", "5"], tmp_path / "c.json")
    assert sum(result["byte_flips"].values()) == 40 and sum(result["truncations"].values()) == 5
    assert result["undetected_damage"] == 0 and result["byte_flips"]["detected"] >= 30  # most bytes carry content
    assert set(result["foreign_files"].values()) == {"refused"}


def test_study_picture_shows_each_runs_real_images_and_samples_at_one_size(tmp_path):
    from PIL import Image

    from tinycats.api import load_generator
    from tinycats.config import SampleConfig
    from tinycats.core.sampling import sample
    from tinycats.data.synth import write_dataset
    from tinycats.pictures import to_pil

    from conftest import make_checkpoint

    runs = []
    for name, geometry in (("small", {"image_size": 16, "patch_size": 4}), ("large", {"image_size": 32, "patch_size": 8})):
        study = tmp_path / name
        write_dataset(study / "data", 0, 1, geometry["image_size"], progress=False)
        run = study / "x-logit-seed0"
        run.mkdir()
        make_checkpoint(run / "dit_step_7_ema.pt", **geometry)
        runs.append(run)
    conv = tmp_path / "large" / "x-logit-conv-seed0"  # a second run in the same study: no second real row
    conv.mkdir()
    runs.append(make_checkpoint(conv / "dit_step_7_ema.pt", decoder="conv", **geometry).parent)
    out = tmp_path / "picture.png"
    script = ROOT / "benchmarks" / "study_picture.py"
    subprocess.run([sys.executable, str(script), *map(str, runs), "--out", str(out)], check=True)
    picture = Image.open(out).convert("RGB")
    cell, pad = 32, 2
    assert picture.height == 5 * (cell + pad) + pad  # real, samples; real, samples, samples: at the larger size
    label_w = picture.width - 13 * (cell + pad) - pad
    expected = to_pil(sample(load_generator(runs[0] / "dit_step_7_ema.pt"), [0], SampleConfig("euler", 25, 2.0), seed=7))[0]
    first_sample = picture.crop((label_w + pad, 1 * (cell + pad) + pad, label_w + pad + cell, 2 * (cell + pad)))
    assert first_sample.tobytes() == expected.resize((cell, cell), Image.Resampling.NEAREST).tobytes()


def test_repeatability_compares_separate_runs_weight_by_weight(tmp_path, image_folder):
    """Eager runs on the CPU agree bit for bit; the script must say so (0 differing) and count every tensor."""
    config = tmp_path / "tiny.yaml"
    config.write_text("model:\n  preset: tinydit-test\ntrain:\n  batch_size: 4\n  lr: 1.0e-3\n")
    args = [str(image_folder), "--config", str(config), "--steps", "2", "--runs", "2", "--precision", "fp32", "--no-compile"]
    r = run_script("repeatability.py", args, tmp_path / "r.json")
    from tinycats.core.model import TinyDiT

    tensors = len(TinyDiT(load_config(str(config), {}).model).state_dict())
    assert r["comparisons"] == [{"run": 2, "tensors": tensors, "differing": 0, "max_abs_difference": 0.0}]
    assert r["settings"]["steps"] == 2 and r["cpu"]
