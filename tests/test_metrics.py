"""The metric maths and its torch-fidelity wiring, checked against independent numpy/scipy code."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import sqrtm
from scipy.spatial.distance import cdist
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.metric_fid import fid_statistics_to_metric
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

from tinycats.evaluate import metrics

# -- Fréchet distance ------------------------------------------------------------------------------


def fid_scipy(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook formula with scipy's general matrix square root."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * sqrtm(s1 @ s2).real))


def test_frechet_distance_matches_scipy_and_torch_fidelity():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 16)) @ rng.normal(size=(16, 16))
    b = rng.normal(0.3, 1.2, size=(300, 16)) @ rng.normal(size=(16, 16))
    ours = metrics.feature_frechet_distance(a, b)
    theirs = fid_statistics_to_metric(
        {"mu": a.mean(0), "sigma": np.cov(a, rowvar=False)}, {"mu": b.mean(0), "sigma": np.cov(b, rowvar=False)}, False
    )[torch_fidelity_key()]
    assert ours == pytest.approx(fid_scipy(a, b), rel=1e-8)
    assert ours == pytest.approx(theirs, rel=1e-8)
    assert ours > 1


def torch_fidelity_key() -> str:
    import torch_fidelity

    return torch_fidelity.KEY_METRIC_FID


def test_frechet_distance_is_exact_for_singular_covariances():
    """Commuting covariances of rank 6 in 32 dimensions, rotated: the distance is known in closed
    form, ||mu1 - mu2||^2 + sum (sqrt(a_i) - sqrt(b_i))^2."""
    rng = np.random.default_rng(1)
    d = 32
    q = np.linalg.qr(rng.normal(size=(d, d)))[0]
    a, b = np.zeros(d), np.zeros(d)
    a[:6], b[3:9] = rng.uniform(0.5, 2, 6), rng.uniform(0.5, 2, 6)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    exact = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    got = metrics.frechet_distance(mu1, (q * a) @ q.T, mu2, (q * b) @ q.T)
    assert got == pytest.approx(exact, rel=1e-9)


def test_identical_sets_give_zero_and_a_growing_shift_a_growing_distance():
    rng = np.random.default_rng(2)
    few = rng.normal(size=(30, 256)) * rng.uniform(0.1, 3, 256)  # 30 samples in 256-d: rank-deficient covariance
    assert 0 <= metrics.feature_frechet_distance(few, few) < 1e-9
    shifts = (0.0, 0.1, 0.5, 1.0, 2.0)
    distances = [metrics.feature_frechet_distance(few, few + shift) for shift in shifts]
    assert distances == sorted(distances) and distances[1] > 0
    # A pure shift moves only the mean: the distance is 256 * shift^2, to rounding.
    assert distances == pytest.approx([256 * s**2 for s in shifts], rel=1e-9, abs=1e-9)


def test_non_negative_keeps_rounding_out_and_says_so():
    warnings: list[str] = []
    assert metrics.non_negative(-1e-4, "FID", warnings) == 0.0
    assert "-0.0001" in warnings[0]
    assert metrics.non_negative(12.5, "FID", warnings) == 12.5
    assert len(warnings) == 1


# -- torch-fidelity wiring, through a tiny registered feature extractor ---------------------------

PROJECTION = torch.from_numpy(np.random.default_rng(3).normal(size=(48, 10)).astype(np.float32))


def tiny_features(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 3, 16, 16] -> [N, 48]: each channel average-pooled to 4x4, scaled to [0, 1]."""
    return torch.nn.functional.avg_pool2d(images.float() / 255, 4).flatten(1)


class TinyExtractor(FeatureExtractorBase):
    """Stands in for Inception so the wiring can be checked on features we can recompute."""

    def __init__(self, name, features_list, **kwargs):
        super().__init__(name, features_list)

    @staticmethod
    def get_provided_features_list():
        return ("feat", "logits")

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return "logits" if metric == "isc" else "feat"

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        raise NotImplementedError

    def forward(self, x):
        feat = tiny_features(x)
        out = {"feat": feat, "logits": 4 * feat @ PROJECTION}
        return tuple(out[name] for name in self.features_list)


if "tinycats-test-tiny" not in FEATURE_EXTRACTORS_REGISTRY:
    register_feature_extractor("tinycats-test-tiny", TinyExtractor)


def kid_numpy(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the polynomial kernel (x.y / d + 1)^3 (Binkowski et al.)."""
    d, m = x.shape[1], len(x)
    kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
    off = lambda k: (k.sum() - np.trace(k)) / (m * (m - 1))  # noqa: E731
    return float(off(kxx) + off(kyy) - 2 * kxy.mean())


def precision_recall_numpy(gen: np.ndarray, real: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Kynkäänniemi et al. 2019: a sample is covered by the other set's manifold when it lies in
    the ball of some sample there, radius = distance to that sample's k-th nearest neighbour."""
    r_real = np.sort(cdist(real, real), axis=1)[:, k]  # column 0 is the sample itself
    r_gen = np.sort(cdist(gen, gen), axis=1)[:, k]
    precision = (cdist(gen, real) <= r_real[None, :]).any(axis=1).mean()
    recall = (cdist(real, gen) <= r_gen[None, :]).any(axis=1).mean()
    return float(precision), float(recall)


def test_precision_recall_on_any_features_is_the_k_nn_manifold_definition():
    """The breed classifier's features through torch-fidelity's function: a generator that covers
    only a fifth of the real set keeps its precision and loses its recall."""
    g = torch.Generator().manual_seed(1)
    real = torch.randn(60, 16, generator=g)
    generated = real[torch.arange(60) % 12] + 0.05 * torch.randn(60, 16, generator=g)
    precision, recall = metrics.feature_precision_recall(generated, real)
    assert (precision, recall) == pytest.approx(precision_recall_numpy(generated.double().numpy(), real.double().numpy()))
    assert precision > 0.9 and recall < 0.4
    assert metrics.feature_precision_recall(real, real) == (1.0, 1.0)


def inception_score_numpy(logits: np.ndarray, splits: int, seed: int = 2020) -> float:
    logits = logits[np.random.RandomState(seed).permutation(len(logits))]
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    scores = []
    for part in np.array_split(p, splits):
        kl = (part * (np.log(part) - np.log(part.mean(0, keepdims=True)))).sum(1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores))


@pytest.fixture(scope="module")
def image_sets():
    """Real: varied random images. Generated: noisy copies of only 8 of them, so precision is high
    and recall low; a mix-up of the two inputs would show."""
    g = torch.Generator().manual_seed(0)
    real = torch.randint(0, 256, (40, 3, 16, 16), generator=g, dtype=torch.uint8)
    base = real[torch.arange(40) % 8].float()
    generated = (base + torch.randn(base.shape, generator=g) * 6).clamp(0, 255).to(torch.uint8)
    return generated, real


def test_fidelity_metrics_match_independent_computations(image_sets):
    generated, real = image_sets
    out = metrics.fidelity_metrics(generated, real, metrics.INCEPTION_METRICS, weights="unused", extractor="tinycats-test-tiny")
    v, s = out["values"], out["settings"]
    fg, fr = tiny_features(generated).double().numpy(), tiny_features(real).double().numpy()
    assert v["fid"] == pytest.approx(fid_scipy(fg, fr), rel=1e-5)
    # Equal set sizes: every KID subset is the whole set in some order, so the mean is the full
    # unbiased MMD^2 and the spread is zero.
    assert s["kid_subset_size"] == 40
    # KID is a difference of float32 kernel sums (cancellation): 1e-5 held on one CPU, not on another.
    assert v["kid_mean"] == pytest.approx(kid_numpy(fg, fr), rel=1e-4)
    assert v["kid_std"] < 1e-3 * abs(v["kid_mean"])  # float32 sums in a different order only
    precision, recall = precision_recall_numpy(fg, fr)
    assert (v["precision"], v["recall"]) == pytest.approx((precision, recall))
    assert v["precision"] > 0.9 and v["recall"] < 0.5  # generated = copies of a fifth of the real set
    logits = (4 * tiny_features(generated) @ PROJECTION).double().numpy()
    assert v["is_mean"] == pytest.approx(inception_score_numpy(logits, s["isc_splits"]), rel=1e-6)
    assert any("2048" in w for w in out["warnings"])  # few images: the FID caveat is in the report
    assert any("std is 0 by construction" in w for w in out["warnings"])


def test_kid_subset_size_follows_the_smaller_set(image_sets):
    generated, real = image_sets
    out = metrics.fidelity_metrics(generated[:25], real, ["kid"], weights="unused", extractor="tinycats-test-tiny")
    assert out["settings"]["kid_subset_size"] == 25
    assert set(out["values"]) == {"kid_mean", "kid_std"} and out["values"]["kid_std"] > 0
    assert out["warnings"] == []


def test_identical_image_sets_never_give_a_negative_fid(image_sets):
    _, real = image_sets
    out = metrics.fidelity_metrics(real, real, ["fid"], weights="unused", extractor="tinycats-test-tiny")
    assert 0 <= out["values"]["fid"] < 1e-6


def test_missing_inception_weights_say_where_to_get_them(tmp_path):
    with pytest.raises(metrics.InceptionUnavailable) as info:
        metrics.resolve_inception_weights(tmp_path / "nope.pth")
    message = str(info.value)
    assert "\n" not in message
    assert metrics.inception_url() in message and str(metrics.default_inception_path()) in message
    assert metrics.inception_url().startswith("https://") and metrics.inception_url().endswith(".pth")
    assert metrics.default_inception_path().name == metrics.inception_url().rsplit("/", 1)[1]
    assert metrics.standard_sha256_prefix() == "6726825d"
