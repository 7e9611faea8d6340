"""The evaluation report: evaluation_report.json for programs, evaluation_report.md for people,
the comparison with an earlier report, and the training-loss plot.

A metric that was not computed is null in the JSON, with the reason under "skipped"; nothing is
ever filled in with a default or a previous value.
"""

from __future__ import annotations

import json
import math
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from tinycats.checkpoint import sha256, step_of, weights_sha256
from tinycats.errors import TinycatsError, UsageError
from tinycats.generator import weights_file

FORMAT = "tinycats-evaluation-v1"
# The sections every reader of a report (the baseline comparison, the Hub check, the card) relies on.
SECTIONS = ("checkpoint", "model_config", "data", "metrics")

# Which way is better, for the change against a baseline. Others (std, reference values, the
# memorised fraction, whose ideal is the test set's own fraction) have no direction.
LOWER_IS_BETTER = ("fid", "kid_mean", "fd_classifier", "seam_ratio")
HIGHER_IS_BETTER = ("is_mean", "precision", "recall", "breed_accuracy", "classifier_precision", "classifier_recall")
LABELS = {
    "fid": "FID (Inception)",
    "kid_mean": "KID mean",
    "kid_std": "KID std",
    "is_mean": "Inception Score mean",
    "is_std": "Inception Score std",
    "precision": "precision (Inception, k=3)",
    "recall": "recall (Inception, k=3)",
    "fd_classifier": "FD-classifier, real test vs generated",
    "fd_classifier_train_vs_test": "FD-classifier reference: real train vs real test",
    "breed_accuracy": "breed accuracy of generated samples",
    "real_breed_accuracy": "classifier accuracy on the real images",
    "memorised_fraction": "generated samples nearer to train than the test 5th percentile",
    "seam_ratio": "seam ratio of generated images (pixel step across patch borders / inside; 1 = no grid)",
    "real_seam_ratio": "seam ratio of the real images, at the same patch grid",
    "classifier_precision": "precision (breed classifier's features, k=3)",
    "classifier_recall": "recall (breed classifier's features, k=3)",
    "classifier_precision_train_vs_test": "precision reference: real train vs real test (classifier's features)",
    "classifier_recall_train_vs_test": "recall reference: real train vs real test (classifier's features)",
    "sharpness_ratio": "sharpness: high-frequency energy of generated / real images (1 = as sharp as real)",
}


def compare(metrics: dict[str, float | None], baseline: dict[str, Any], baseline_path: str) -> dict[str, Any]:
    """Each metric present in both reports: old, new, change in % of |old|, and whether it
    improved (None where the metric has no better direction or the change is undefined)."""
    old_metrics = baseline.get("metrics", {})
    changes = {}
    for key, new in metrics.items():
        old = old_metrics.get(key)
        if new is None or old is None:
            continue
        pct = (new - old) / abs(old) * 100 if old != 0 else None
        improved = (new < old) if key in LOWER_IS_BETTER else (new > old) if key in HIGHER_IS_BETTER else None
        changes[key] = {"old": old, "new": new, "change_pct": pct, "improved": improved}
    return {"path": baseline_path, "checkpoint": baseline.get("checkpoint", {}).get("path"), "changes": changes}


def check_report(report: Any, shown: str, error: type[TinycatsError] = UsageError) -> dict[str, Any]:
    """`report` if it is a tinycats evaluation report with every section readers use; else one
    line naming the field that is wrong, as `error`."""
    found = report.get("format") if isinstance(report, dict) else None
    if found != FORMAT:
        raise error(
            f"{shown} is not a tinycats evaluation report (its 'format' is {found!r}, not {FORMAT!r}): "
            "give a report written by `tinycats evaluate`"
        )
    missing = [key for key in SECTIONS if not isinstance(report.get(key), dict)]
    if missing:
        raise error(f"{shown} lacks the field {missing[0]!r} of an evaluation report: write it again with `tinycats evaluate`")
    return report


def read_baseline(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"baseline report {path} does not exist (a JSON file written by `tinycats evaluate`)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"baseline report {path} is not JSON ({exc})") from exc
    return check_report(data, f"baseline report {path}")


def find_metrics_jsonl(checkpoint: str, log_dir: str | None) -> Path | None:
    """--log-dir's metrics.jsonl, else the run's own outputs/ next to its checkpoints/ folder,
    else ./outputs."""
    candidates = [Path(log_dir)] if log_dir else [Path(checkpoint).parent.parent / "outputs", Path("outputs")]
    return next((c / "metrics.jsonl" for c in candidates if (c / "metrics.jsonl").is_file()), None)


def read_losses(metrics_jsonl: Path) -> dict[int, float]:
    """{step: loss} from metrics.jsonl. A resumed run appends to the same file; if it went back to
    an earlier step, its later lines replace the earlier ones for those steps."""
    losses: dict[int, float] = {}
    for line in metrics_jsonl.read_text().splitlines():
        if line.strip():
            entry = json.loads(line)
            if "loss" in entry:
                losses[int(entry["step"])] = float(entry["loss"])
    return losses


def loss_plot(checkpoint: str, log_dir: str | None, out: Path) -> tuple[Path | None, str | None]:
    """The training loss against step as a PNG (matplotlib, Agg backend: no display needed), or
    None and the reason there is none."""
    jsonl = find_metrics_jsonl(checkpoint, log_dir)
    if jsonl is None:
        return None, f"no metrics.jsonl {'in ' + log_dir if log_dir else 'found'} (pass --log-dir): no loss plot"
    losses = read_losses(jsonl)
    if not losses:
        return None, f"{jsonl} holds no training losses: no loss plot"
    try:
        import matplotlib
    except ImportError:
        return None, "matplotlib is not installed (pip install 'tinycats[eval]'): no loss plot"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = sorted(losses)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(steps, [losses[s] for s in steps], linewidth=1)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (v-space MSE)")
    ax.set_title(str(jsonl), fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out, None


def write(report: dict[str, Any], path: str | Path) -> tuple[Path, Path]:
    """Write the JSON report and the Markdown one beside it (same stem, .md)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    md = path.with_suffix(".md")
    md.write_text(markdown(report))
    return path, md


def group_skipped(skipped: dict[str, str]) -> dict[str, list[str]]:
    """{reason: [metrics]}: one line per reason instead of one per metric."""
    grouped: dict[str, list[str]] = {}
    for key, reason in skipped.items():
        grouped.setdefault(reason, []).append(key)
    return grouped


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}"
    return str(value)


def _metric_rows(report: dict[str, Any]) -> list[str]:
    """The computed metrics; with a baseline, its value and the change beside each."""
    baseline = report.get("baseline")
    changes = baseline["changes"] if baseline else {}
    rows = ["| metric | value | baseline | change |", "|---|---|---|---|"] if baseline else ["| metric | value |", "|---|---|"]
    for key, value in report["metrics"].items():
        if value is None:
            continue
        row = f"| {LABELS.get(key, key)} | {_fmt(value)} |"
        if baseline:
            change = changes.get(key)
            old, delta = "", ""
            if change:
                old, pct = _fmt(change["old"]), change["change_pct"]
                verdict = {True: " (better)", False: " (worse)" if pct else "", None: ""}[change["improved"]]
                delta = ("n/a" if pct is None else f"{pct:+.1f} %") + verdict
            row += f" {old} | {delta} |"
        rows.append(row)
    return rows


def markdown(report: dict[str, Any]) -> str:
    ck, data, sampler = report["checkpoint"], report["data"], report["sampler"]
    model = report["model_config"]
    lines = [
        f"# Evaluation of `{ck['path']}`",
        "",
        f"Model `{model['preset']}` ({model['image_size']} px, prediction `{model['prediction']}`), "
        f"sha256 `{(ck['sha256'] or 'n/a')[:16]}…`.",
        (
            f"Samples: {sampler['sampler']}, {sampler['steps']} steps, guidance {sampler['cfg_scale']}, seed {sampler['seed']}."
            if sampler
            else f"Samples read from `{data['fake_dir']}`."
        ),
        f"{data['n_generated']} generated images against {data['n_real']} real images from `{data['real_dir']}`; "
        f"wall time {report['wall_time_s']:.1f} s.",
        "",
        "## Metrics",
        "",
        *_metric_rows(report),
        "",
    ]
    for reason, keys in group_skipped(report["skipped"]).items():
        lines += [f"Not computed: {', '.join(keys)}. {reason}", ""]
    if report["warnings"]:
        lines += ["Warnings:", "", *[f"- {w}" for w in report["warnings"]], ""]
    clf = report.get("classifier")
    if clf:
        lines += [
            f"Judge: `{clf['path']}` ({clf['backbone']}, {clf['image_size']} px), test accuracy when trained: "
            f"{_fmt(clf['test_accuracy'])}; on these real images: {_fmt(report['metrics'].get('real_breed_accuracy'))}.",
            "",
        ]
    if report.get("per_breed"):
        sharp = report.get("sharpness_per_breed") or {}
        lines += [
            "## Per breed",
            "",
            "| breed | generated | accuracy | real | classifier accuracy on real | sharpness (generated / real) |",
            "|---|---|---|---|---|---|",
        ]
        for r in report["per_breed"]:
            generated, real = _fmt(r["accuracy_generated"]), _fmt(r["accuracy_real"])
            row = f"| {r['breed']} | {r['n_generated']} | {generated} | {r['n_real']} | {real} | {_fmt(sharp.get(r['breed']))} |"
            lines.append(row)
        lines.append("")
    mem = report.get("memorisation")
    if mem:
        lines += [
            "## Memorisation",
            "",
            f"{mem['fraction_generated_below']:.1%} of generated samples are nearer to a training image than "
            f"{mem['percentile']:g} % of real test images are (threshold {mem['threshold']:.4g}, {mem['feature_space']}); "
            f"without copying this is about {mem['percentile']:g} %. Median nearest-neighbour distance: generated "
            f"{mem['median_nn_distance_generated']:.4g}, test {mem['median_nn_distance_test']:.4g}.",
            "",
        ]
    pictures = report["pictures"]
    for title, key in (
        ("Closest generated / training pairs", "memorisation"),
        ("Samples", "overview"),
        ("Training loss", "loss"),
    ):
        if pictures.get(key):
            lines += [f"## {title}", "", f"![{title}]({pictures[key]})", ""]
    if not pictures.get("loss"):
        lines += ["## Training loss", "", report["notes"].get("loss", "no loss plot"), ""]
    libraries = ", ".join(f"{k} {v}" for k, v in report["versions"].items())
    lines += ["## Versions", "", libraries, ""]
    return "\n".join(lines)


def checkpoint_identity(path: str, model: torch.nn.Module) -> dict[str, Any]:
    """Path, sha256 (of the file, or of a Hub folder's model.safetensors), step, and the identity
    of the weights themselves (`checkpoint.weights_sha256`, the same in every container)."""
    identity = {"path": str(path), "sha256": _sha256_of(path), "step": step_of(path)}
    return {**identity, "weights_sha256": weights_sha256(model.state_dict())}


def _sha256_of(path: str) -> str | None:
    if str(path).startswith("hf://"):
        return None  # a Hub id: the revision is in the Hub's history
    weights = weights_file(path)
    return sha256(weights) if weights.is_file() else None


def versions() -> dict[str, str]:
    """Versions of Python and of the libraries that produce the numbers."""
    packages = ("tinycats", "torch", "torchvision", "torch-fidelity", "numpy", "scipy")
    found = {}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:  # not installed: not listed
            continue
    return {"python": platform.python_version(), **found}
