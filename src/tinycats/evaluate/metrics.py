"""Generative metrics: FID, KID, Inception Score and precision/recall through torch-fidelity, and
the Fréchet distance between any two feature sets (FD-classifier).

Inception metrics run torch-fidelity's `FeatureExtractorInceptionV3` (the standard TF-FID
weights, pt_inception-2015-12-05, as converted by torch-fidelity) from a local file, never from
the network. Real and generated images reach it the same way: uint8 tensors at the generator's
resolution, which torch-fidelity resizes to 299 px with its TF1-compatible bilinear filter.
Precision/recall use the same Inception pool features (2048-d, k = 3) so that one weights file
serves every metric; Kynkäänniemi et al. used VGG-16 features, so these values are comparable
with Inception-based precision/recall (e.g. the ADM evaluation suite), not with VGG-based ones.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from torch.utils.data import Dataset

from tinycats.checkpoint import read_tensors
from tinycats.errors import CheckpointError, InceptionUnavailable, TinycatsError, UsageError

INCEPTION = "inception-v3-compat"
INCEPTION_METRICS = ("fid", "kid", "is", "prc")
FID_RELIABLE_N = 2048  # below this the 2048-d covariance is rank-deficient and FID is biased upwards
_TORCH_FIDELITY_FLAGS = {"fid": "fid", "kid": "kid", "is": "isc", "prc": "prc"}


def inception_url() -> str:
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
    except ImportError as exc:
        raise InceptionUnavailable("torch-fidelity is not installed: pip install 'tinycats[eval]'") from exc
    return URL_INCEPTION_V3


def default_inception_path() -> Path:
    """Where torch-fidelity's own download would put the file: torch hub's checkpoint cache
    ($TORCH_HOME/hub/checkpoints, by default ~/.cache/torch/hub/checkpoints)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(inception_url()).path)


def standard_sha256_prefix() -> str:
    """torch hub names files <name>-<first 8 hex digits of their sha256>.<ext>."""
    return default_inception_path().stem.rsplit("-", 1)[-1]


def resolve_inception_weights(path: str | Path | None) -> Path:
    """The weights file to use: `path`, or torch hub's cache. Missing -> one line that says where
    to get it and where to put it (nothing is downloaded)."""
    url = inception_url()  # first: fails if torch-fidelity is not installed
    target = Path(path) if path else default_inception_path()
    fetch = f"download {url} and save it as {default_inception_path()} (or pass --inception-weights PATH)"
    if not target.is_file():
        raise InceptionUnavailable(f"Inception weights not found at {target}: {fetch}")
    read_state_dict(target, fetch, InceptionUnavailable)
    return target


def read_state_dict(path: str | Path, fix: str, error: type[TinycatsError] = CheckpointError) -> dict[str, torch.Tensor]:
    """A {name: tensor} file, read weights-only; anything else is one line ending in `fix`, before
    any work (torch-fidelity and torchvision would fail on it later, with a traceback)."""
    try:
        state = read_tensors(path, "state dict")
    except CheckpointError:
        state = None
    if isinstance(state, dict) and state and all(isinstance(v, torch.Tensor) for v in state.values()):
        return state
    raise error(f"{path} is not a state dict of tensors: {fix}")


class UInt8Images(Dataset):
    """A uint8 [N, 3, H, W] tensor as the Dataset torch-fidelity reads (one CHW uint8 image per item)."""

    def __init__(self, images: torch.Tensor) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected uint8 images [N, 3, H, W], got {images.dtype} {tuple(images.shape)}")
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


def fidelity_metrics(
    generated: torch.Tensor,
    real: torch.Tensor,
    wanted: Collection[str],
    weights: str | Path,
    device: torch.device | str = "cpu",
    batch_size: int = 64,
    extractor: str = INCEPTION,
    progress: bool = False,
) -> dict:
    """FID, KID, IS and precision/recall of uint8 image sets, in one torch-fidelity call (each
    set goes through the feature extractor once). Returns {"values": {...}, "settings": {...},
    "warnings": [...]}; `values` holds only what `wanted` asks for."""
    import torch_fidelity

    unknown = set(wanted) - set(INCEPTION_METRICS)
    if unknown or not wanted:
        raise ValueError(f"wanted must be a non-empty subset of {INCEPTION_METRICS}, got {sorted(wanted)}")
    n_gen, n_real = len(generated), len(real)
    if min(n_gen, n_real) < 2:
        raise UsageError(f"Inception metrics need at least 2 images per set, got {n_gen} generated and {n_real} real")
    settings = {
        "feature_extractor": extractor,
        "kid_subset_size": min(1000, n_gen, n_real),
        "kid_subsets": 100,
        "isc_splits": min(10, n_gen),
        "prc_neighborhood": 3,
        "rng_seed": 2020,
    }
    out = torch_fidelity.calculate_metrics(
        input1=UInt8Images(generated),  # torch-fidelity's convention: input1 generated, input2 real (precision/recall)
        input2=UInt8Images(real),
        cuda=torch.device(device).type == "cuda",
        batch_size=batch_size,
        feature_extractor_weights_path=str(weights),
        cache=False,
        save_cpu_ram=True,  # no DataLoader worker processes: the images are already in memory
        verbose=progress,
        **{_TORCH_FIDELITY_FLAGS[m]: m in wanted for m in INCEPTION_METRICS},
        **settings,
    )
    values: dict[str, float] = {}
    warnings: list[str] = []
    if "fid" in wanted:
        values["fid"] = non_negative(out[torch_fidelity.KEY_METRIC_FID], "FID", warnings)
        if min(n_gen, n_real) < FID_RELIABLE_N:
            warnings.append(
                f"FID on {n_gen} generated / {n_real} real images (< {FID_RELIABLE_N}): the 2048-d covariances are "
                "rank-deficient and FID is biased upwards; compare FIDs only at equal image counts"
            )
    if "kid" in wanted:
        values["kid_mean"] = out[torch_fidelity.KEY_METRIC_KID_MEAN]
        values["kid_std"] = out[torch_fidelity.KEY_METRIC_KID_STD]
        if n_gen == n_real == settings["kid_subset_size"]:
            warnings.append(f"KID subsets are the whole sets ({n_gen} images each): its std is 0 by construction")
    if "is" in wanted:
        values["is_mean"] = out[torch_fidelity.KEY_METRIC_ISC_MEAN]
        values["is_std"] = out[torch_fidelity.KEY_METRIC_ISC_STD]
    if "prc" in wanted:
        values["precision"] = out[torch_fidelity.KEY_METRIC_PRECISION]
        values["recall"] = out[torch_fidelity.KEY_METRIC_RECALL]
    return {"values": {k: float(v) for k, v in values.items()}, "settings": settings, "warnings": warnings}


def non_negative(value: float, name: str, warnings: list[str]) -> float:
    """A squared distance below zero can only be rounding (identical or near-identical sets);
    it is reported as 0 and the raw value is kept in a warning."""
    if value < 0:
        warnings.append(f"{name} computed as {value:.3g} (rounding; the true value is >= 0) and reported as 0")
        return 0.0
    return value


def statistics(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of [N, D] features, in float64."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need [N >= 2, D] features, got shape {x.shape}")
    return x.mean(0), np.cov(x, rowvar=False)


def _drop_rounding(eigenvalues: np.ndarray) -> np.ndarray:
    """Eigenvalues of a PSD matrix with those at rounding level (negative, or below d * eps *
    the largest) set to 0. Their square roots would otherwise add up: with 30 samples in 256
    dimensions, 226 zero eigenvalues computed as +-1e-14 shift the distance by about 1e-4."""
    floor = len(eigenvalues) * np.finfo(eigenvalues.dtype).eps * max(eigenvalues.max(), 0.0)
    return np.where(eigenvalues > floor, eigenvalues, 0.0)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2), never negative.

    Tr((S1 S2)^1/2) = Tr((R S2 R)^1/2) with R = S1^1/2, and R S2 R is symmetric PSD, so only
    symmetric eigendecompositions are needed: no iterative `sqrtm` of a non-symmetric product,
    which goes complex or inaccurate when few samples make the covariances singular.
    """
    w, v = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    r = (v * np.sqrt(_drop_rounding(w))) @ v.T
    m = r @ sigma2 @ r
    tr_sqrt = np.sqrt(_drop_rounding(np.linalg.eigvalsh((m + m.T) / 2))).sum()
    diff = mu1 - mu2
    return max(float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_sqrt), 0.0)


def feature_precision_recall(generated: torch.Tensor, real: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Precision and recall (Kynkäänniemi et al. 2019, k-NN manifolds) of two feature sets, by
    torch-fidelity's own function: precision = share of generated samples inside the real
    manifold, recall = share of real samples inside the generated one. A generator that draws one
    pose per breed keeps its precision and loses recall."""
    try:
        from torch_fidelity.metric_prc import prc_features_to_metric
    except ImportError as exc:
        raise UsageError("precision/recall need torch-fidelity, which is not installed: pip install 'tinycats[eval]'") from exc
    settings = {"prc_neighborhood": k, "prc_batch_size": 10000, "save_cpu_ram": False, "verbose": False}
    out = prc_features_to_metric(generated.float(), real.float(), **settings)  # torch-fidelity: generated first
    return out["precision"], out["recall"]


def feature_frechet_distance(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """Fréchet distance between two feature sets, e.g. a classifier's features of real and
    generated images."""
    return frechet_distance(*statistics(a), *statistics(b))
