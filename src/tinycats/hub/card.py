"""The model card: huggingface_hub's ModelCard with a ModelCardData header.

Every number on it is read from a file that goes into the same commit: the metrics (and the
model-index) from reports/evaluation_report.json, the speed table from the benchmark report, the
training settings from config.json. What was not given is said to be absent, never filled in.
"""

from __future__ import annotations

from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from tinycats.hub import layout

LICENSE = "mit"
TAGS = ["tinycats", "diffusion", "flow-matching", "class-conditional", "image-generation", "cats", "onnx"]
# What the report measures of real images alone (real vs real): the yardsticks the card names in its
# text. Every other figure of the report is about the model and goes into the model-index.
REFERENCE_METRICS = (
    "fd_classifier_train_vs_test", "real_breed_accuracy", "real_seam_ratio",
    "classifier_precision_train_vs_test", "classifier_recall_train_vs_test",
)  # fmt: skip
PLACEHOLDER_REPO = "OWNER/REPO"


def build_card(
    config: dict[str, Any],
    parameters: int,
    files: list[str],
    evaluation: dict[str, Any] | None = None,
    benchmark: dict[str, Any] | None = None,
    repo_id: str | None = None,
    space_id: str | None = None,
) -> ModelCard:
    """`files`: the repo's relative paths (to show only pictures and formats that are there).
    `space_id`: the static Space that shows this model (`tinycats space`), linked from the card."""
    from tinycats.evaluate.report import LABELS

    repo = repo_id or PLACEHOLDER_REPO
    data = config.get("data") or {}
    dataset = data.get("source")
    results = []
    if evaluation:
        for key, value in evaluation["metrics"].items():
            if value is not None and key not in REFERENCE_METRICS:
                results.append(
                    EvalResult(
                        task_type="image-generation",
                        task_name="Class-conditional image generation",
                        dataset_type=dataset or "image-folder",
                        dataset_name=data.get("name") or "unrecorded image folder",
                        dataset_split="test",
                        metric_type=key,
                        metric_name=LABELS.get(key, key),
                        metric_value=float(value),
                    )
                )
    name = repo_id.split("/")[-1] if repo_id else f"tinycats-{config['preset']}"
    card_data = ModelCardData(
        library_name="tinycats",
        license=LICENSE,
        tags=TAGS,
        datasets=[dataset] if dataset in ("oxford-iiit-pet", "toy-cats") else None,
        model_name=name,
        eval_results=results or None,
    )
    body = "\n".join([
        _intro(config, parameters, data, name, files),
        _usage(repo, files, space_id),
        training_section(config),
        _evaluation(evaluation, LABELS),
        _speed(benchmark),
        _files(files),
    ])  # fmt: skip
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n{body}")


def _intro(config: dict[str, Any], parameters: int, data: dict[str, Any], name: str, files: list[str]) -> str:
    classes = config["class_names"]
    trained_on = f"[{data['name']}]({data['url']})" if data.get("url") else data.get("name", "an image folder (not recorded)")
    lines = [
        f"# {name}",
        "",
        f"A breed-conditional image generator made with tinycats: a TinyDiT "
        f"(`{config['preset']}`, {parameters / 1e6:.2f}M parameters, {config['image_size']} px, patch {config['patch_size']}, "
        f"prediction `{config['prediction']}`) trained with flow matching on {trained_on}. "
        f"{len(classes)} classes: {', '.join(classes)}.",
        "",
    ]
    if layout.OVERVIEW in files:
        lines += [f"![samples: a row per class]({layout.OVERVIEW})", ""]
    return "\n".join(lines)


def _usage(repo: str, files: list[str], space_id: str | None) -> str:
    import tinycats
    from tinycats.about import project_urls

    s, folder = "hf://" + repo, repo.split("/")[-1]
    lines = ["## Use it", ""]
    if space_id:
        lines += [
            f"In a browser, nothing to install: the Space [{space_id}](https://huggingface.co/spaces/{space_id}) "
            "draws from this repo with onnxruntime-web.",
            "",
        ]
    urls = project_urls()
    source = "its source" + (f" ({', '.join(f'[{k}]({v})' for k, v in urls.items())})" if urls else "")
    wheel = f"tinycats-{tinycats.__version__}-py3-none-any.whl"
    lines += [
        f"tinycats is not on PyPI: install its wheel, or from {source}. In a copy of the source, `make wheel` "
        f"builds the wheel into `dist/`, and `make web` builds the browser page an install from the source needs; "
        f"`[onnx]` adds what the ONNX files need.",
        "",
        "```bash",
        f'pip install "dist/{wheel}[onnx]"     # the wheel (it carries the browser page)',
        'make web && pip install ".[onnx]"   # or from the source',
        "```",
        "",
        "```bash",
        f"tinycats sample --checkpoint {s} --all-breeds --num-samples 16 --output-dir samples",
        "```",
        "",
        "```python",
        "import tinycats",
        f'model = tinycats.load_generator("{s}")',
        'images = tinycats.generate(model, ["Siamese", "Bombay"], seed=0)  # the recommended sampler, from config.json',
        "```",
        "",
    ]
    if layout.SAMPLER in files:
        lines += [
            f"Without tinycats or PyTorch: `{layout.SAMPLER}` needs only onnxruntime, numpy and Pillow, and draws what "
            "`tinycats sample --onnx` draws for the same seed:",
            "",
            "```bash",
            f"pip install onnxruntime numpy pillow && hf download {repo} --local-dir {folder}",
            f"python {folder}/{layout.SAMPLER} --breed Siamese --seed 0 --output siamese.png",
            "```",
            "",
        ]
    if layout.ONNX["fp32"] in files:
        lines += [
            "With tinycats but without running PyTorch (its ONNX-only sampler computes with onnxruntime and numpy):",
            "",
            "```bash",
            f"hf download {repo} --local-dir {folder}",
            f"tinycats sample --onnx {folder}/{layout.ONNX['fp32']} --all-breeds",
            "```",
            "",
            f"`{layout.ONNX['fp32']}` is one guided step (inputs `x`, `t`, `label`, `cfg_scale`; output the guided velocity "
            f"`v`); integrate dx/dt = v from t = 0 (noise) to t = 1 (image) and do not apply guidance again. "
            f"`{layout.SIDECAR}` holds the class names, the recommended sampler and each file's sha256.",
            "",
            f"In a browser on your machine (onnxruntime-web; the page comes with the wheel): `tinycats web --model {s}`; "
            f"the page reads this repo through `https://huggingface.co/{repo}/resolve/<revision>/`.",
            "",
        ]
    return "\n".join(lines)


def training_section(config: dict[str, Any]) -> str:
    t, s = config.get("training") or {}, config["sample"]
    if not t:
        return "## Training\n\nThe training settings were not recorded.\n"
    batch, accumulation = t["batch_size"], t["gradient_accumulation_steps"]
    interval = list(s["guidance_interval"])
    rows = [
        ("steps trained", f"{t['steps_done']:,} (of {t['steps']:,} planned)"),
        ("batch", f"{batch} × {accumulation} accumulation = {batch * accumulation}"),
        ("learning rate", f"{t['lr']:g}, {t['warmup_steps']:,} warm-up steps, {t['lr_schedule']} schedule"),
        ("augmentation", t["augmentation_level"]),
        ("EMA", f"power function, σ_rel = {t['ema_sigma_rel']}" if t.get("ema_sigma_rel") else f"β = {t['ema_beta']}"),
        ("label dropout (for guidance)", f"{t['label_dropout']:.0%}"),
        ("time sampling", t["time_sampling"]),
        ("recommended sampler", f"{s['sampler']}, {s['steps']} steps, guidance {s['cfg_scale']} on t ∈ {interval}"),
    ]
    return "\n".join(["## Training", "", "| setting | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""])


def _evaluation(report: dict[str, Any] | None, labels: dict[str, str]) -> str:
    if not report:
        return "## Evaluation\n\nNot evaluated: this version was published without an evaluation report.\n"
    data, sampler = report["data"], report.get("sampler")
    how = f"{data['n_generated']} generated images"
    if sampler:
        how += f" ({sampler['sampler']}, {sampler['steps']} steps, guidance {sampler['cfg_scale']}, seed {sampler['seed']})"
    how += f" against {data['n_real']} real test images"
    measured = {k: v for k, v in report["metrics"].items() if v is not None}
    rows = [f"| {labels.get(k, k)} | {v:.4g} |" for k, v in measured.items() if k not in REFERENCE_METRICS]
    lines = ["## Evaluation", "", f"Measured by `tinycats evaluate` on {how} ([report]({layout.EVALUATION})).", ""]
    lines += ["| metric | value |", "|---|---|", *rows, ""]
    references = [f"| {labels.get(k, k)} | {measured[k]:.4g} |" for k in REFERENCE_METRICS if k in measured]
    if references:
        lines += [
            "What the same measures give for real images alone (real vs real), the figures to read the ones above against:",
            "",
            "| reference | value |",
            "|---|---|",
            *references,
            "",
        ]
    return "\n".join(lines)


def _speed(report: dict[str, Any] | None) -> str:
    if not report:
        return "## Speed\n\nNot benchmarked for this version.\n"
    from tinycats.export.benchmark_report import format_table

    env = report["environment"]
    where = f"{env.get('device_name') or env.get('device')}, {env.get('cpu_count')} CPUs, torch {env.get('torch')}"
    return "\n".join(
        ["## Speed", "", f"`tinycats benchmark` on {where} ([report]({layout.BENCHMARK})); times in ms.", "",
         "```", format_table(report), "```", ""]
    )  # fmt: skip


def _files(files: list[str]) -> str:
    return "\n".join(["## Files", "", *(f"- `{f}`" for f in sorted(files)), ""])
