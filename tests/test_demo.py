"""The demo end to end, shrunk: fewer toy cats, the test-sized model, one classifier epoch."""

import json

from huggingface_hub import ModelCard

from tinycats import demo
from tinycats.evaluate import classifier
from tinycats.hub.check import check


def test_demo_runs_end_to_end_and_reuses_its_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "TRAIN_PER_CLASS", 6)
    monkeypatch.setattr(demo, "TEST_PER_CLASS", 3)
    monkeypatch.setattr(demo, "GALLERY_PER_BREED", 2)
    monkeypatch.setattr(demo, "EVAL_PER_BREED", 3)
    monkeypatch.setattr(demo, "CLASSIFIER_EPOCHS", 1)
    monkeypatch.setattr(demo, "JUDGE_SIZE", 24)
    config = tmp_path / "tiny.yaml"
    config.write_text("model: {preset: tinydit-test}\ntrain: {steps: 3, batch_size: 8, log_interval: 1}\nsample: {steps: 2}\n")
    out = tmp_path / "demo"
    summary = demo.run_demo(out, str(config))
    text = summary.read_text()
    assert "breed accuracy" in text and "samples/overview.png" in text and "| **total** |" in text
    for name in ("Abyssinian", "Sphynx", "Other"):
        assert sorted(p.name for p in (out / "samples" / name).iterdir()) == [f"{name}_0.png", f"{name}_1.png"]
    assert (out / "samples" / "overview.png").is_file() and classifier.load(out / "classifier.pt").image_size == 24
    report = json.loads((out / "evaluation_report.json").read_text())
    assert report["data"]["n_generated"] == 13 * 3
    assert f"**{report['metrics']['breed_accuracy']:.1%}**" in text  # the summary shows the report's number
    files = check(out / "hub")  # the staged Hub folder passes the upload checks
    assert {"onnx/generator.onnx", "onnx/generator_int8.onnx", "reports/evaluation_report.json"} <= set(files)
    card = ModelCard.load(out / "hub" / "README.md")
    on_card = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert on_card["breed_accuracy"] == report["metrics"]["breed_accuracy"]
    assert (out / "checkpoints" / "dit_step_3_ema.pt").is_file()
    capsys.readouterr()
    demo.run_demo(out, str(config))  # a second run reuses the trained model
    assert "already trained" in capsys.readouterr().out
