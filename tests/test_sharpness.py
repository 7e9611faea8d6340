"""The sharpness figure: the Laplacian's energy on the luminance, checked against a direct
convolution, and that it sees blur and detail the way a person does."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import correlate

from tinycats.evaluate import sharpness


def energy_scipy(images: np.ndarray) -> np.ndarray:
    """Per image: luminance (Rec. 601) of [0, 1] pixels, 3×3 Laplacian, mean square over the interior."""
    kernel = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64)
    out = []
    for image in images.astype(np.float64) / 255:
        luma = 0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2]
        out.append((correlate(luma, kernel, mode="constant")[1:-1, 1:-1] ** 2).mean())
    return np.array(out)


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (6, 3, 20, 20), generator=g, dtype=torch.uint8)


def test_energy_is_the_mean_squared_laplacian_of_the_luminance(images):
    ours = sharpness.high_frequency_energy(images).double().numpy()
    assert ours == pytest.approx(energy_scipy(images.numpy()), rel=1e-5)
    as_float = images.float() / 127.5 - 1  # the same images in the model's [-1, 1] convention
    assert sharpness.high_frequency_energy(as_float).double().numpy() == pytest.approx(ours, rel=1e-5)


def test_the_ratio_sees_blur_and_flat_images(images):
    blurred = F.avg_pool2d(images.float(), 3, stride=1, padding=1, count_include_pad=False).round().to(torch.uint8)
    assert sharpness.sharpness_ratio(images, images) == pytest.approx(1.0)
    assert sharpness.sharpness_ratio(blurred, images) < 0.3  # a 3×3 box blur removes most of the detail
    assert sharpness.sharpness_ratio(images, blurred) > 3
    flat = torch.full_like(images, 128)
    assert sharpness.sharpness_ratio(flat, images) == 0.0
    assert np.isnan(sharpness.sharpness_ratio(images, flat))  # nothing to compare against


def test_per_class_compares_each_class_with_its_own_real_images(images):
    blurred = F.avg_pool2d(images.float(), 3, stride=1, padding=1, count_include_pad=False).round().to(torch.uint8)
    generated = torch.cat([images[:3], blurred[3:]])
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    out = sharpness.per_class(generated, labels, images, labels, ["sharp", "soft", "absent"])
    assert out["sharp"] == pytest.approx(1.0) and out["soft"] < 0.3 and out["absent"] is None
