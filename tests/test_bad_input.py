"""Bad input to every command: a non-zero exit, ONE stderr line "tinycats: error: ..." naming the
problem and the fix, no traceback, and nothing written or changed anywhere under the tmp tree.

One table drives it: (id, argv with {placeholders}, message fragment). The placeholders name the
files built once for the module by `files`; {tmp} is the test's own (empty) folder, also the cwd.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest
import torch
from PIL import Image

from tinycats.cli import main

from conftest import make_checkpoint, make_folder


def case(id: str, argv: str, message: str):
    """One row of the table: the command line (placeholders filled from the fixtures) and a fragment
    of the one error line it must print."""
    return pytest.param(argv, message, id=id)


CASES = [
    # train
    case("train-missing-data", "train /no/such/dir --steps 1", "data directory /no/such/dir does not exist"),
    case("train-unknown-preset", "train x --config no-such-preset", "no config 'no-such-preset'"),
    case("train-resume-missing", "train x --resume /no/such.pt", "checkpoint /no/such.pt does not exist"),
    case("train-negative-steps", "train {data} --model tinydit-test --steps -3", "invalid train setting steps=-3"),
    case("train-zero-batch", "train {data} --model tinydit-test --batch-size 0", "invalid train setting batch_size=0"),
    case("train-lr-nan", "train {data} --model tinydit-test --lr nan", "invalid train setting lr=nan"),
    case("train-image-size-vs-patch", "train {data} --model tinydit-test --image-size 18", "not a multiple of patch size 4"),
    case("train-no-gpu", "train {data} --model tinydit-test --device cuda", "no CUDA GPU is visible; use --device cpu"),
    case("train-no-gpu-3", "train {data} --model tinydit-test --device cuda:3", "--device cuda:3"),
    case("train-unknown-device", "train {data} --model tinydit-test --device tpu", "unknown device 'tpu'"),
    case("train-resume-ema-only", "train {data} --resume {ckpt}", "EMA weights only"),
    case(
        "train-resume-text",
        "train {data} --resume {text}",
        "notes.txt is not a readable checkpoint (not a file written",
    ),
    case("train-yaml-malformed", "train {data} --config {bad_yaml}", "bad.yaml is not readable YAML at line 2"),
    case("train-yaml-not-a-mapping", "train {data} --config {list_yaml}", "list.yaml must be a YAML mapping"),
    case("train-yaml-unknown-setting", "train {data} --config {typo_yaml}", "unknown train setting 'stepz'"),
    case("train-unknown-model", "train {data} --model tinydit-huge", "argument --model: invalid choice: 'tinydit-huge'"),
    case(
        "train-zero-accumulation",
        "train {data} --model tinydit-test --gradient-accumulation-steps 0",
        "gradient_accumulation_steps=0",
    ),
    case("train-label-dropout-1", "train {data} --model tinydit-test --label-dropout 1", "label_dropout=1"),
    case("train-ema-sigma-rel-too-wide", "train {data} --model tinydit-test --ema-sigma-rel 0.3", "ema_sigma_rel=0.3"),
    case("train-zero-image-size", "train {data} --model tinydit-test --image-size 0", "invalid model setting image_size"),
    case(
        "train-checkpoint-dir-is-a-file",
        "train {data} --model tinydit-test --checkpoint-dir {text}",
        "notes.txt is a file",
    ),
    case(
        "train-log-dir-is-a-file",
        "train {data} --model tinydit-test --log-dir {text}",
        "notes.txt is a file",
    ),
    case("train-data-is-a-file", "train {text} --model tinydit-test", "notes.txt is not a folder"),
    # sample
    case("sample-missing-checkpoint", "sample --checkpoint /no/such.pt", "checkpoint /no/such.pt does not exist"),
    case(
        "sample-text-as-checkpoint",
        "sample --checkpoint {text}",
        "notes.txt is not a readable checkpoint (not a file written",
    ),
    case(
        "sample-onnx-as-checkpoint",
        "sample --checkpoint {onnx}",
        "generator.onnx is not a readable checkpoint (not a file written",
    ),
    case("sample-checkpoint-as-onnx", "sample --onnx {ckpt}", "dit_step_7_ema.pt is not a readable ONNX model"),
    case("sample-unknown-breed", "sample --checkpoint {ckpt} --breed Dragon", "unknown breed 'Dragon'; choose one of"),
    case("sample-negative-steps", "sample --checkpoint {ckpt} --steps -2", "--steps -2: sampling needs at least 1 step"),
    case("sample-zero-batch", "sample --checkpoint {ckpt} --batch-size 0", "argument --batch-size: must be at least 1"),
    case("sample-steps-not-a-number", "sample --checkpoint {ckpt} --steps many", "argument --steps: invalid int value: 'many'"),
    case("sample-checkpoint-and-onnx", "sample --checkpoint {ckpt} --onnx {onnx}", "not allowed with argument --checkpoint"),
    case("sample-cfg-nan", "sample --checkpoint {ckpt} --cfg-scale nan", "--cfg-scale nan is not a finite number"),
    case(
        "sample-interval-reversed",
        "sample --checkpoint {ckpt} --guidance-interval 0.9 0.1",
        "--guidance-interval 0.9 0.1: need 0 <= LO <= HI",
    ),
    case("sample-zero-samples", "sample --checkpoint {ckpt} --num-samples 0", "--num-samples must be at least 1"),
    case("sample-no-gpu", "sample --checkpoint {ckpt} --device cuda", "no CUDA GPU is visible"),
    case("sample-no-gpu-3", "sample --checkpoint {ckpt} --device cuda:3", "--device cuda:3"),
    case("sample-foreign-onnx", "sample --onnx {foreign_onnx}", "carries no tinycats metadata"),
    case("sample-onnx-broken-metadata", "sample --onnx {broken_onnx}", "tinycats metadata of {broken_onnx} is not JSON"),
    case("sample-onnx-with-device", "sample --onnx {onnx} --device cpu", "--onnx always runs on the CPU"),
    case("sample-foreign-model-folder", "sample --checkpoint {foreign}", "config.json is not a tinycats config"),
    case("sample-malformed-model-folder", "sample --checkpoint {malformed}", "config.json is not JSON"),
    case("sample-output-is-a-file", "sample --checkpoint {ckpt} --output-dir {text}", "notes.txt is a file, not a folder"),
    # evaluate
    case(
        "evaluate-junk-inception",
        "evaluate --checkpoint {ckpt} --real-dir {real} --compute-fid --inception-weights {junk} --report-path {tmp}/r/e.json",
        "junk.pth is not a state dict of tensors: download",
    ),
    case(
        "evaluate-png-inception",
        "evaluate --checkpoint {ckpt} --real-dir {real} --compute-fid --inception-weights {png} --report-path {tmp}/r/e.json",
        "picture.png is not a state dict of tensors: download",
    ),
    case(
        "evaluate-checkpoint-as-inception",
        "evaluate --checkpoint {ckpt} --real-dir {real} --compute-is --inception-weights {ckpt}",
        "dit_step_7_ema.pt is not a state dict of tensors: download",
    ),
    case(
        "evaluate-report-path-is-a-folder",
        "evaluate --checkpoint {ckpt} --real-dir {real} --report-path {data}",
        "--report-path {data} is a folder: give a file name",
    ),
    case(
        "evaluate-missing-inception",
        "evaluate --checkpoint {ckpt} --real-dir {real} --compute-kid --inception-weights /no/inception.pth",
        "Inception weights not found at /no/inception.pth",
    ),
    case(
        "evaluate-missing-real-dir",
        "evaluate --checkpoint {ckpt} --real-dir /no/real --report-path {tmp}/r/e.json",
        "image folder /no/real does not exist",
    ),
    case(
        "evaluate-breed-accuracy-without-classifier",
        "evaluate --checkpoint {ckpt} --real-dir {real} --breed-accuracy",
        "--breed-accuracy needs a breed classifier",
    ),
    case(
        "evaluate-checkpoint-as-classifier",
        "evaluate --checkpoint {ckpt} --real-dir {real} --classifier {ckpt} --report-path {tmp}/r/e.json",
        "dit_step_7_ema.pt is not a tinycats classifier",
    ),
    case(
        "evaluate-classifier-of-other-classes",
        "evaluate --checkpoint {ckpt} --real-dir {real} --classifier {clf} --report-path {tmp}/r/e.json",
        "judge.pt does not know the model's class(es)",
    ),
    case(
        "evaluate-baseline-malformed",
        "evaluate --checkpoint {ckpt} --real-dir {real} --baseline {malformed_json} --report-path {tmp}/r/e.json",
        "baseline report {malformed_json} is not JSON",
    ),
    case(
        "evaluate-baseline-not-a-report",
        "evaluate --checkpoint {ckpt} --real-dir {real} --baseline {foreign_json} --report-path {tmp}/r/e.json",
        "foreign.json is not a tinycats evaluation report (its 'format' is None",
    ),
    case(
        "evaluate-baseline-lacks-metrics",
        "evaluate --checkpoint {ckpt} --real-dir {real} --baseline {no_metrics_json} --report-path {tmp}/r/e.json",
        "no_metrics.json lacks the field 'metrics'",
    ),
    case(
        "evaluate-no-generated-images",
        "evaluate --checkpoint {ckpt} --real-dir {real} --fake-dir /no/fakes --report-path {tmp}/r/e.json",
        "no generated images at /no/fakes: pass --generate-samples",
    ),
    case(
        "evaluate-zero-samples",
        "evaluate --checkpoint {ckpt} --real-dir {real} --num-samples 0",
        "--num-samples must be at least 1",
    ),
    case(
        "evaluate-interval-reversed",
        "evaluate --checkpoint {ckpt} --real-dir {real} --generate-samples --guidance-interval 1 0",
        "--guidance-interval 1 0: need 0 <= LO <= HI",
    ),
    case("evaluate-no-gpu", "evaluate --checkpoint {ckpt} --real-dir {real} --device cuda:3", "--device cuda:3"),
    # export-onnx
    case(
        "export-text-as-checkpoint",
        "export-onnx --checkpoint {text} --output {tmp}/x/g.onnx",
        "notes.txt is not a readable checkpoint (not a file written",
    ),
    case(
        "export-missing-checkpoint",
        "export-onnx --checkpoint /no/such.pt --output {tmp}/x/g.onnx",
        "checkpoint /no/such.pt does not exist",
    ),
    case("export-old-opset", "export-onnx --checkpoint {ckpt} --opset 17 --output {tmp}/x/g.onnx", "--opset 17 is too old"),
    case("export-output-not-onnx", "export-onnx --checkpoint {ckpt} --output {tmp}/x/g.json", "g.json must end in .onnx"),
    case(
        "export-foreign-model-folder",
        "export-onnx --checkpoint {foreign} --output {tmp}/x/g.onnx",
        "config.json is not a tinycats config",
    ),
    case("export-output-under-a-file", "export-onnx --checkpoint {ckpt} --output {text}/g.onnx", "notes.txt is a file"),
    # benchmark
    case(
        "benchmark-checkpoint-as-onnx",
        "benchmark --model {ckpt} --onnx {ckpt} --no-compile",
        "dit_step_7_ema.pt is not a readable ONNX model",
    ),
    case("benchmark-missing-onnx", "benchmark --model {ckpt} --onnx /no/g.onnx", "ONNX model /no/g.onnx does not exist"),
    case(
        "benchmark-onnx-as-model",
        "benchmark --model {onnx}",
        "generator.onnx is not a readable checkpoint (not a file written",
    ),
    case("benchmark-zero-batch", "benchmark --model {ckpt} --batch-sizes 0,4", "batch sizes must be >= 1, not [0, 4]"),
    case("benchmark-zero-runs", "benchmark --model {ckpt} --num-runs 0", "need --num-runs >= 1"),
    case("benchmark-negative-threads", "benchmark --model {ckpt} --threads -2", "--threads -2: need at least 1"),
    case("benchmark-cfg-nan", "benchmark --model {ckpt} --cfg-scale nan", "--cfg-scale nan is not a finite number"),
    case("benchmark-no-gpu", "benchmark --model {ckpt} --device cuda", "no CUDA GPU is visible"),
    case("benchmark-batch-sizes-not-numbers", "benchmark --model {ckpt} --batch-sizes a,b", "comma-separated integers"),
    case("benchmark-report-under-a-file", "benchmark --model {ckpt} --report-path {text}/b.json", "notes.txt is a file"),
    # data
    case("data-synth-tiny-images", "data synth {tmp}/toy --image-size 8", "16 to 256 px"),
    case("data-synth-negative-count", "data synth {tmp}/toy --per-class -1", "--per-class must be >= 0"),
    case("data-synth-out-is-a-file", "data synth {text}", "notes.txt is a file, not a folder"),
    case(
        "data-download-negative-other",
        "data download --out {tmp}/cats --cache {tmp}/cache --other-per-split -1",
        "--other-per-split must be >= 0",
    ),
    case("data-prepare-missing-source", "data prepare --source /no/pets --out {tmp}/cats", "/no/pets does not exist"),
    case("data-prepare-junk-source", "data prepare --source {junk_pets} --out {tmp}/cats", "images.tar.gz is damaged"),
    case("data-validate-missing", "data validate /no/such/data", "data directory /no/such/data does not exist"),
    case("data-validate-zero-batch", "data validate {data} --batch-size 0", "--batch-size must be positive"),
    case("data-validate-a-file", "data validate {text}", "notes.txt is not a folder"),
    case(
        "data-synth-negative-workers",
        "data synth {tmp}/toy --per-class 1 --test-per-class 0 --workers -1",
        "--workers",
    ),
    case(
        "data-download-zero-timeout",
        "data download --out {tmp}/cats --cache {tmp}/cache --timeout 0",
        "--timeout must be a positive number",
    ),
    case("data-prepare-source-is-a-file", "data prepare --source {text} --out {tmp}/cats", "--source {text} is not a folder"),
    # train-classifier, classify
    case(
        "train-classifier-zero-epochs",
        "train-classifier {data} --epochs 0 --output {tmp}/c.pt",
        "--epochs and --batch-size must be at least 1",
    ),
    case(
        "train-classifier-weights-without-resnet",
        "train-classifier {data} --pretrained-weights {junk} --output {tmp}/c.pt",
        "use it with --backbone resnet18",
    ),
    case(
        "train-classifier-missing-data", "train-classifier /no/data --output {tmp}/c.pt", "data directory /no/data does not exist"
    ),
    case(
        "train-classifier-zero-size", "train-classifier {data} --image-size 0 --output {tmp}/c.pt", "--image-size 0 is too small"
    ),
    case("train-classifier-no-gpu", "train-classifier {data} --device cuda --output {tmp}/c.pt", "no CUDA GPU is visible"),
    case("train-classifier-negative-lr", "train-classifier {data} --lr -1 --output {tmp}/c.pt", "--lr -1.0 must be a positive"),
    case("train-classifier-output-is-a-folder", "train-classifier {data} --output {data}", "--output {data} is a folder"),
    case(
        "train-classifier-junk-weights",
        "train-classifier {data} --backbone resnet18 --pretrained-weights {junk} --output {tmp}/c.pt",
        "junk.pth is not a state dict of tensors: give --pretrained-weights a torchvision resnet18",
    ),
    case(
        "classify-generator-as-classifier", "classify --checkpoint {ckpt} {png}", "dit_step_7_ema.pt is not a tinycats classifier"
    ),
    case("classify-missing-image", "classify --checkpoint {clf} /no/cat.png", "cannot read image /no/cat.png"),
    case("classify-text-as-image", "classify --checkpoint {clf} {text}", "cannot read image {text}"),
    case("classify-no-gpu", "classify --checkpoint {clf} {png} --device cuda:3", "--device cuda:3"),
    # upload
    case("upload-bad-repo-id", "upload --generator {ckpt} --repo-id not/a/repo", "is not a Hub repo id"),
    case("upload-no-repo-id", "upload --generator {ckpt}", "--repo-id OWNER/REPO is needed"),
    case("upload-staged-and-dry-run", "upload --staged {foreign} --dry-run {tmp}/s --repo-id a/b", "takes no --dry-run"),
    case(
        "upload-text-as-generator",
        "upload --generator {text} --dry-run {tmp}/s",
        "notes.txt is not a readable checkpoint (not a file written",
    ),
    case(
        "upload-checkpoint-as-onnx",
        "upload --generator {ckpt} --onnx-generator {ckpt} --dry-run {tmp}/s",
        "--onnx-generator: {ckpt} is not a readable ONNX",
    ),
    case(
        "upload-foreign-evaluation-report",
        "upload --generator {ckpt} --evaluation-report {foreign_json} --dry-run {tmp}/s",
        "foreign.json is not a tinycats evaluation report",
    ),
    case(
        "upload-benchmark-report-malformed",
        "upload --generator {ckpt} --benchmark-report {malformed_json} --dry-run {tmp}/s",
        "malformed.json is not JSON",
    ),
    case(
        "upload-samples-without-overview",
        "upload --generator {ckpt} --samples-dir {tmp} --dry-run {tmp}/s",
        "has no overview.png",
    ),
    case("upload-staged-foreign-config", "upload --staged {foreign} --repo-id a/b", "config.json is not a tinycats config"),
    case("upload-staged-malformed-config", "upload --staged {malformed} --repo-id a/b", "config.json is not JSON"),
    case("upload-no-source", "upload --repo-id a/b", "one of the arguments --generator --staged is required"),
    case(
        "upload-report-lacks-a-field",
        "upload --generator {ckpt} --evaluation-report {no_metrics_json} --dry-run {tmp}/s",
        "lacks the field 'metrics'",
    ),
    # web
    case("web-bad-port", "web --model {web_foreign} --port 70000", "--port 70000 is not a port number"),
    case("web-folder-without-onnx", "web --model {data}", "has no onnx/generator.json"),
    case("web-checkpoint-as-model", "web --model {ckpt}", "has no onnx/generator.json"),
    case("web-foreign-sidecar", "web --model {web_foreign}", "format 'something-else', expected 'tinycats-onnx-v1'"),
    case("web-malformed-sidecar", "web --model {web_malformed}", "generator.json is not JSON"),
    case("web-bad-hub-ref", "web --model hf://not-a-ref", "is not a Hub model"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """Every input the table names: good files used in the wrong place, and bad ones."""
    import onnx

    from tinycats.evaluate.classifier import ClassifierSettings, train_classifier
    from tinycats.export.contract import METADATA_KEY
    from tinycats.export.onnx import export_onnx

    root = tmp_path_factory.mktemp("bad_input")
    data = make_folder(root / "data", per_class=3, size=16)
    ckpt = make_checkpoint(root / "ck" / "dit_step_7_ema.pt")
    onnx_path = export_onnx(ckpt, root / "onnx" / "generator.onnx").onnx
    pixels = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    judge = train_classifier(
        pixels, torch.tensor([0, 1, 0, 1]), ["Tabby", "Tuxedo"], ClassifierSettings(image_size=16, epochs=1, device="cpu")
    )
    clf = judge.save(root / "judge.pt")  # knows none of the generator's classes
    written = {
        "notes.txt": "not a checkpoint\n",
        "junk.pth": "junk",
        "bad.yaml": "train: [steps: 3\n",
        "list.yaml": "- steps\n- 3\n",
        "typo.yaml": "train:\n  stepz: 3\n",
        "malformed.json": '{"metrics": ',
        "foreign.json": json.dumps({"results": [1, 2], "accuracy": 0.9}),
        "no_metrics.json": json.dumps({"format": "tinycats-evaluation-v1", "checkpoint": {}, "model_config": {}, "data": {}}),
        "foreign/config.json": json.dumps({"model_type": "bert", "hidden_size": 768}),
        "malformed/config.json": '{"format": "tinycats-hub-v1",',
        "web_foreign/onnx/generator.json": json.dumps({"format": "something-else"}),
        "web_malformed/onnx/generator.json": "{",
        "junk_pets/images.tar.gz": "junk",
    }
    for rel, text in written.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    Image.new("RGB", (16, 16), (200, 100, 50)).save(root / "picture.png")
    graph = onnx.load(str(onnx_path))
    del graph.metadata_props[:]
    onnx.save(graph, str(root / "alien.onnx"))  # a valid graph that carries no tinycats metadata
    graph.metadata_props.add(key=METADATA_KEY, value="{not json")
    onnx.save(graph, str(root / "broken.onnx"))
    paths = {"data": data, "real": data / "train", "ckpt": ckpt, "onnx": onnx_path, "clf": clf, "png": root / "picture.png"}
    paths |= {"foreign_onnx": root / "alien.onnx", "broken_onnx": root / "broken.onnx", "text": root / "notes.txt"}
    paths |= {"junk": root / "junk.pth", "malformed_json": root / "malformed.json", "foreign_json": root / "foreign.json"}
    paths |= {"no_metrics_json": root / "no_metrics.json", "junk_pets": root / "junk_pets"}
    paths |= {name: root / name.replace("_yaml", ".yaml") for name in ("bad_yaml", "list_yaml", "typo_yaml")}
    paths |= {name: root / name for name in ("foreign", "malformed", "web_foreign", "web_malformed")}
    return {key: str(path) for key, path in paths.items()}


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under root (folders too) with its size and mtime: any write shows."""
    found = {}
    for folder, dirs, names in os.walk(root):
        for name in [*dirs, *names]:
            stat = os.lstat(os.path.join(folder, name))
            found[os.path.relpath(os.path.join(folder, name), root)] = (stat.st_size, stat.st_mtime_ns)
    return found


@pytest.mark.parametrize("argv, message", CASES)
def test_bad_input_gives_one_clear_line_and_writes_nothing(argv, message, files, tmp_path, tmp_path_factory, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)  # "a machine without a GPU", on any machine
    monkeypatch.setattr("http.server.HTTPServer.serve_forever", lambda self: pytest.fail("web started serving"))
    args = [part.format(**files, tmp=tmp_path) for part in shlex.split(argv)]
    base = tmp_path_factory.getbasetemp()
    before = snapshot(base)
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(err) == 1 and err[0].startswith("tinycats: error:"), err
    assert message.format(**files, tmp=tmp_path) in err[0], err[0]
    assert snapshot(base) == before, "a refused command wrote or changed files"
