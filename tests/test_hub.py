"""Publishing to and loading from the Hub, offline: a tiny trained model is staged with every file
the layout has, read back only through huggingface_hub's and safetensors' own APIs, loaded as
hf://OWNER/REPO from a Hub cache laid out by the test, and "uploaded" through a recording fake
HfApi (the one seam that would touch the network)."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub.utils._http
import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from safetensors import safe_open

import tinycats
from tinycats import checkpoint
from tinycats.cli import main
from tinycats.core.model import TinyDiT
from tinycats.core.sampling import sample
from tinycats.data.synth import write_dataset
from tinycats.errors import HubError
from tinycats.evaluate.classifier import ClassifierSettings, train_from_folder
from tinycats.evaluate.report import LABELS
from tinycats.generator import load_generator
from tinycats.hub import card as card_lib
from tinycats.hub import layout
from tinycats.hub.check import check
from tinycats.hub.publish import publish, record_path
from tinycats.training.loop import train

from conftest import fake_metadata, tiny_config

REPO = "tinycats-test/toy"


def run_cli(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(argv)) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> SimpleNamespace:
    """Toy cats at 16 px, a TinyDiT trained for 4 steps, its ONNX files, samples, an evaluation
    (with a breed classifier trained here), a benchmark, and the dry-run staging of all of them."""
    root = tmp_path_factory.mktemp("hub")
    data = root / "cats"
    write_dataset(data, per_class=8, test_per_class=2, image_size=16, seed=0, progress=False)
    result = train(
        tiny_config(steps=4, log_interval=1), data, root / "checkpoints", root / "outputs", device="cpu", progress=False
    )
    ema = result.ema_checkpoint
    train_from_folder(data, ClassifierSettings(image_size=16, epochs=2, batch_size=32, device="cpu")).save(root / "judge.pt")
    onnx = root / "export" / "generator.onnx"
    run_cli("export-onnx", "--checkpoint", str(ema), "--output", str(onnx), "--quantize")
    run_cli("sample", "--checkpoint", str(ema), "--num-samples", "2", "--output-dir", str(root / "samples"), "--steps", "2")
    evaluation = root / "evaluation_report.json"
    run_cli(
        "evaluate", "--checkpoint", str(ema), "--real-dir", str(data / "test"), "--generate-samples", "--num-samples", "26",
        "--classifier", str(root / "judge.pt"), "--report-path", str(evaluation), "--steps", "2", "--device", "cpu",
    )  # fmt: skip
    bench = root / "benchmark_report.json"
    run_cli(
        "benchmark", "--model", str(ema), "--onnx", str(onnx), "--device", "cpu", "--num-warmup", "0", "--num-runs", "2",
        "--batch-sizes", "1", "--steps", "2", "--no-compile", "--report-path", str(bench),
    )  # fmt: skip
    inputs = {
        "--generator": ema, "--onnx-generator": onnx, "--evaluation-report": evaluation,
        "--benchmark-report": bench, "--samples-dir": root / "samples",
    }  # fmt: skip
    staged = root / "staged"
    printed = run_cli("upload", *[str(v) for kv in inputs.items() for v in kv], "--repo-id", REPO, "--dry-run", str(staged))
    return SimpleNamespace(root=root, data=data, ema=ema, train_file=result.checkpoint, onnx=onnx, evaluation=evaluation,
                           bench=bench, inputs=inputs, staged=staged, printed=printed)  # fmt: skip


def stage_with(world, tmp_path: Path, **changes: object) -> tuple[int, str]:
    """Run `upload --dry-run` with some inputs replaced; return (exit code, stderr)."""
    inputs = {**world.inputs, **changes}
    argv = ["upload", *[str(v) for k, v in inputs.items() if v is not None for v in (k, v)], "--dry-run", str(tmp_path / "s")]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()


def test_the_staged_folder_has_exactly_the_layout(world):
    files = {p.relative_to(world.staged).as_posix() for p in world.staged.rglob("*") if p.is_file()}
    grids = {layout.breed_grid(name) for name in checkpoint.load(world.ema)["config"]["model"]["class_names"]}
    expected = {layout.CARD, layout.CONFIG, layout.WEIGHTS, *layout.ONNX.values(), layout.SIDECAR, layout.SAMPLER,
                layout.EVALUATION, layout.BENCHMARK, layout.OVERVIEW, *grids}  # fmt: skip
    assert files == expected
    assert not any(f.endswith(layout.PICKLE_SUFFIXES) for f in files)
    assert "dry run: nothing was uploaded" in world.printed and f"{layout.WEIGHTS}" in world.printed
    assert not record_path(world.staged).exists()


def test_hub_libraries_read_the_folder_back(world):
    state = checkpoint.load(world.ema)
    # safetensors' own reader: the EMA weights, bit for bit.
    with safe_open(str(world.staged / layout.WEIGHTS), framework="pt") as f:
        assert set(f.keys()) == set(state["model"])
        for name in f.keys():  # noqa: SIM118 (a safe_open handle is not a dict)
            assert torch.equal(f.get_tensor(name), state["model"][name])
    # PyTorchModelHubMixin's own loader, strict.
    model = TinyDiT.from_pretrained(str(world.staged), strict=True)
    assert model.config.class_names == state["config"]["model"]["class_names"]
    config = json.loads((world.staged / layout.CONFIG).read_text())
    assert config["sample"] == state["config"]["sample"] and config["training"]["steps_done"] == 4
    assert config["data"]["source"] == "toy-cats"
    assert config["weights_sha256"] == checkpoint.weights_sha256(state["model"])


def test_model_card_holds_exactly_the_measured_metrics(world):
    card = ModelCard.load(world.staged / layout.CARD)
    report = json.loads(world.evaluation.read_text())
    assert card.data.library_name == "tinycats" and card.data.license == "mit" and card.data.datasets == ["toy-cats"]
    # Every figure the report measures about the model (the classifier's and the seam metric; no Inception here) ...
    about_model = ("breed_accuracy", "fd_classifier", "memorised_fraction", "classifier_precision", "classifier_recall")
    about_model += ("seam_ratio", "sharpness_ratio")
    measured = {k: report["metrics"][k] for k in about_model}
    assert None not in measured.values()
    assert {r.metric_type: r.metric_value for r in card.data.eval_results} == pytest.approx(measured)
    text = card.text
    # ... and the real-vs-real yardsticks named in the text, not passed off as the model's.
    references = ("fd_classifier_train_vs_test", "real_breed_accuracy", "real_seam_ratio")
    for key in (*references, "classifier_precision_train_vs_test", "classifier_recall_train_vs_test"):
        assert f"| {LABELS[key]} | {report['metrics'][key]:.4g} |" in text.split("real vs real")[1], key
    assert "pip install tinycats" not in text and "github.com" not in text  # no package or site that does not exist
    assert f"{report['data']['n_generated']} generated images" in text and f"{report['data']['n_real']} real test images" in text
    assert "FID" not in text and "not evaluated" not in text.lower()
    assert f"hf://{REPO}" in text and "| batch | 4 × 1 accumulation = 4 |" in text and "| EMA | β = 0.99 |" in text
    assert "onnx-fp32" in text  # the benchmark table


def test_the_card_links_its_space_and_the_project_only_where_they_are_set(world, tmp_path, monkeypatch):
    out = tmp_path / "with-space"
    run_cli("upload", "--generator", str(world.ema), "--repo-id", REPO, "--space-id", "tinycats-test/page", "--dry-run", str(out))
    text = ModelCard.load(out / layout.CARD).text
    assert "the Space [tinycats-test/page](https://huggingface.co/spaces/tinycats-test/page)" in text
    assert "huggingface.co/spaces" not in ModelCard.load(world.staged / layout.CARD).text
    # The install lines name the file `make wheel` builds (tests/test_wheel.py builds it) and the source.
    assert f'pip install "dist/tinycats-{tinycats.__version__}-py3-none-any.whl[onnx]"' in text
    assert 'make web && pip install ".[onnx]"' in text
    config = json.loads((world.staged / layout.CONFIG).read_text())
    monkeypatch.setattr("tinycats.about.metadata", lambda name: fake_metadata({}))
    assert "from its source." in card_lib.build_card(config, 1000, [layout.CONFIG], repo_id=REPO).text  # no URL set: none named
    links = {"Source": "https://example.org/tinycats", "Funding": "mailto:someone@example.org"}
    monkeypatch.setattr("tinycats.about.metadata", lambda name: fake_metadata(links))
    text = card_lib.build_card(config, 1000, [layout.CONFIG], repo_id=REPO).text
    assert "from its source ([Source](https://example.org/tinycats))." in text and "mailto" not in text


def test_the_card_names_the_power_function_ema_where_one_was_used(world):
    config = json.loads((world.staged / layout.CONFIG).read_text())
    config["training"]["ema_sigma_rel"] = 0.1
    assert "| EMA | power function, σ_rel = 0.1 |" in card_lib.training_section(config)


def test_a_card_without_reports_says_so(world, tmp_path):
    out = tmp_path / "bare"
    run_cli("upload", "--generator", str(world.ema), "--dry-run", str(out))
    card = ModelCard.load(out / layout.CARD)
    assert card.data.eval_results is None and "model-index" not in (out / layout.CARD).read_text()
    assert "Not evaluated" in card.text and "Not benchmarked" in card.text
    assert {p.name for p in out.iterdir()} == {layout.CARD, layout.CONFIG, layout.WEIGHTS}


def test_folder_and_checkpoint_give_the_same_images(world):
    from_ckpt, from_folder = load_generator(world.ema, device="cpu"), load_generator(world.staged, device="cpu")
    assert from_folder.sample_config == from_ckpt.sample_config
    labels = list(range(from_ckpt.config.num_classes))
    a = sample(from_ckpt, labels, from_ckpt.sample_config, seed=3)
    assert torch.equal(a, sample(from_folder, labels, from_folder.sample_config, seed=3))


def hub_cache(world, cache: Path, revision: str = "a" * 40) -> None:
    """The Hub cache's own layout for REPO at `revision`, with refs/main pointing at it."""
    repo = cache / f"models--{REPO.replace('/', '--')}"
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for rel in (layout.CONFIG, layout.WEIGHTS):
        shutil.copyfile(world.staged / rel, snapshot / rel)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """HF_HUB_OFFLINE=1 with an empty cache in tmp_path (the constants are read at import time)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_hf_refs_load_from_a_warm_cache_offline(world, offline, tmp_path):
    hub_cache(world, offline)
    out = tmp_path / "out"
    run_cli("sample", "--checkpoint", f"hf://{REPO}", "--num-samples", "1", "--output-dir", str(out / "hub"))
    run_cli("sample", "--checkpoint", str(world.ema), "--num-samples", "1", "--output-dir", str(out / "ckpt"))
    for picture in (out / "ckpt").rglob("*_0.png"):
        assert picture.read_bytes() == (out / "hub" / picture.relative_to(out / "ckpt")).read_bytes()
    assert load_generator(f"hf://{REPO}@main", device="cpu").config.num_classes == 13


def test_hf_refs_offline_without_a_cache_are_one_line(offline, capsys):
    assert main(["sample", "--checkpoint", f"hf://{REPO}", "--output-dir", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not in the local Hub cache" in err and f"hf download {REPO}" in err
    assert main(["sample", "--checkpoint", "hf://not a repo"]) == 2


class FakeHfApi:
    """Records what would be sent; `fail` makes upload_folder raise like the real client does."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.fail = fail

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kw}))

    def create_branch(self, repo_id, **kw):
        self.calls.append(("create_branch", {"repo_id": repo_id, **kw}))

    def upload_folder(self, **kw):
        self.calls.append(("upload_folder", {**kw, "files": sorted(p.name for p in Path(kw["folder_path"]).rglob("*"))}))
        if self.fail:
            raise self.fail
        return SimpleNamespace(commit_url=f"https://huggingface.co/{kw['repo_id']}/commit/{'b' * 40}", oid="b" * 40)


def test_upload_makes_one_commit_and_records_the_pinned_url(world, tmp_path):
    folder = tmp_path / "staged"
    shutil.copytree(world.staged, folder)
    api = FakeHfApi()
    published = publish(folder, REPO, "v1", revision="ha-400k", private=True, api=api)
    names = [name for name, _ in api.calls]
    assert names == ["create_repo", "create_branch", "upload_folder"]
    assert api.calls[0][1] == {"repo_id": REPO, "private": True, "exist_ok": True, "repo_type": "model"}
    upload = api.calls[2][1]
    assert upload["revision"] == "ha-400k" and upload["commit_message"] == "v1" and "model.safetensors" in upload["files"]
    assert published.base_url == f"https://huggingface.co/{REPO}/resolve/{'b' * 40}/"
    record = json.loads(record_path(folder).read_text())
    assert record["base_url"] == published.base_url and record["commit_sha"] == "b" * 40
    assert not (folder / record_path(folder).name).exists()


def test_a_refused_upload_is_one_line_keeps_the_folder_and_never_shows_the_token(world, tmp_path, monkeypatch, capsys):
    from huggingface_hub.errors import HfHubHTTPError

    token = "hf_FAKEtoken1234567890abcdef"
    folder = tmp_path / "staged"
    shutil.copytree(world.staged, folder)
    before = sorted((p.relative_to(folder), p.read_bytes()) for p in folder.rglob("*") if p.is_file())
    client = importlib.import_module((huggingface_hub.utils._http.__dict__.get("httpx2") and "httpx2") or "httpx")
    response = client.Response(401, request=client.Request("POST", f"https://huggingface.co/api/models/{REPO}/commit/main"))
    refusal = HfHubHTTPError(f"401 Client Error: Unauthorized (token {token} is invalid)", response=response)
    api = FakeHfApi(fail=refusal)
    monkeypatch.setattr("huggingface_hub.HfApi", lambda token=None: api)
    code = main(["upload", "--staged", str(folder), "--repo-id", REPO, "--token", token])
    err = capsys.readouterr()
    assert code == 2 and len(err.err.strip().splitlines()) == 1
    assert "401" in err.err and f"--staged {folder}" in err.err
    assert sorted((p.relative_to(folder), p.read_bytes()) for p in folder.rglob("*") if p.is_file()) == before
    written = [p for p in tmp_path.rglob("*") if p.is_file()] + [p for p in world.root.rglob("*") if p.is_file()]
    assert all(token.encode() not in p.read_bytes() for p in written)
    assert token not in err.out + err.err


def test_onnx_from_other_weights_is_refused(world, tmp_path):
    other = tmp_path / "other_ema.pt"
    state = checkpoint.load(world.ema)
    state["model"] = {k: v + 0.01 for k, v in state["model"].items()}
    checkpoint.save_atomic(state, other)
    code, err = stage_with(world, tmp_path, **{"--generator": other})
    assert code == 2 and "is about other weights" in err and str(world.onnx) in err
    assert not (tmp_path / "s").exists() and not list(tmp_path.glob(".s.staging-*"))


def test_the_training_state_file_publishes_the_same_weights(world, tmp_path):
    code, err = stage_with(world, tmp_path, **{"--generator": world.train_file})
    assert code == 0, err
    assert (tmp_path / "s" / layout.WEIGHTS).read_bytes() == (world.staged / layout.WEIGHTS).read_bytes()


def test_a_report_about_another_checkpoint_is_refused(world, tmp_path):
    report = json.loads(world.evaluation.read_text())
    report["checkpoint"]["weights_sha256"] = "0" * 64
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(report))
    code, err = stage_with(world, tmp_path, **{"--evaluation-report": wrong})
    assert code == 2 and f"{wrong} is about other weights" in err


@pytest.mark.parametrize("field", ["class_names", "format", "json"])
def test_broken_reports_and_class_mismatches_are_one_line(world, tmp_path, field):
    report = json.loads(world.evaluation.read_text())
    wrong = tmp_path / "wrong.json"
    if field == "class_names":
        report["model_config"]["class_names"] = report["model_config"]["class_names"][::-1]
        wrong.write_text(json.dumps(report))
    elif field == "format":
        wrong.write_text(json.dumps({"metrics": {}}))
    else:
        wrong.write_text("{not json")
    code, err = stage_with(world, tmp_path, **{"--evaluation-report": wrong})
    assert code == 2 and len(err.strip().splitlines()) == 1 and str(wrong) in err
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({**json.loads(world.bench.read_text()), "model": {"weights_sha256": "1" * 64}}))
    code, err = stage_with(world, tmp_path, **{"--benchmark-report": bench})
    assert code == 2 and f"{bench} is about other weights" in err


def test_a_tampered_staged_folder_fails_its_check(world, tmp_path):
    folder = tmp_path / "staged"
    shutil.copytree(world.staged, folder)
    check(folder)
    int8 = folder / layout.ONNX["int8"]
    int8.write_bytes(int8.read_bytes()[:-1] + b"\0")
    with pytest.raises(HubError, match=r"sha256 or size of files\.int8"):
        check(folder)
    shutil.copytree(world.staged, folder, dirs_exist_ok=True)
    (folder / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(HubError, match="is a pickle"):
        check(folder)


def test_weights_identity_does_not_depend_on_the_container(world):
    ema = checkpoint.load(world.ema)["model"]
    assert checkpoint.weights_sha256(checkpoint.ema_weights(checkpoint.load(world.train_file))) == checkpoint.weights_sha256(ema)
    changed = {**ema}
    name = sorted(changed)[0]
    changed[name] = changed[name].clone()
    flat = changed[name].view(-1)
    flat[0] = torch.nextafter(flat[0], torch.tensor(np.inf))  # one ulp of one weight
    assert checkpoint.weights_sha256(changed) != checkpoint.weights_sha256(ema)
