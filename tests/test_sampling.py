import math

import numpy as np
import torch

from tinycats.config import MODEL_PRESETS, ModelConfig, SampleConfig
from tinycats.core.flow import velocity
from tinycats.core.model import TinyDiT
from tinycats.core.noise import initial_noise
from tinycats.core.sampling import GuidedStep, guided_velocity, sample
from tinycats.core.solvers import euler, guided, heun, model_calls


def test_solvers_integrate_from_zero_to_one_with_the_expected_order():
    # dx/dt = x has x(1) = e * x(0): Euler's error shrinks ~1/N, Heun's ~1/N^2.
    def f(x, t):
        return x

    exact = math.e
    e10, e20 = abs(euler(f, 1.0, 10) - exact), abs(euler(f, 1.0, 20) - exact)
    h10, h20 = abs(heun(f, 1.0, 10) - exact), abs(heun(f, 1.0, 20) - exact)
    assert 1.8 < e10 / e20 < 2.2
    assert h20 < e20 / 10 and h10 / h20 > 3.0


def test_solvers_visit_times_in_order_and_count_calls():
    seen = []

    def f(x, t):
        seen.append(t)
        return np.zeros_like(x)

    euler(f, np.zeros(1), 4)
    assert seen == [0.0, 0.25, 0.5, 0.75]
    seen.clear()
    heun(f, np.zeros(1), 4)
    assert len(seen) == model_calls("heun", 4) == 7
    assert seen == [0.0, 0.25, 0.25, 0.5, 0.5, 0.75, 0.75]  # predictor, corrector; last step Euler


def test_noise_of_image_i_depends_only_on_seed_and_i():
    batch = initial_noise(7, range(5), (3, 4, 4))
    assert np.array_equal(initial_noise(7, [3], (3, 4, 4))[0], batch[3])
    assert not np.array_equal(batch[0], batch[1])
    assert not np.array_equal(initial_noise(8, [3], (3, 4, 4))[0], batch[3])


def trained_like_model(prediction: str = "x") -> TinyDiT:
    torch.manual_seed(0)
    model = TinyDiT(ModelConfig(**MODEL_PRESETS["tinydit-test"], prediction=prediction))
    for p in model.parameters():  # non-zero everywhere, so outputs depend on input, time and label
        p.data.normal_(0, 0.1)
    return model.eval()


def test_batch_size_does_not_change_any_image():
    model = trained_like_model()
    settings = SampleConfig(sampler="heun", steps=5, cfg_scale=2.0)
    labels = [0, 3, 12, 5, 1]
    one_by_one = sample(model, labels, settings, seed=3, batch_size=1)
    together = sample(model, labels, settings, seed=3, batch_size=5)
    assert torch.allclose(one_by_one, together, atol=1e-5)
    moved = sample(model, labels[2:3], settings, seed=3, indices=[2])
    assert torch.allclose(moved[0], together[2], atol=1e-5)


class Recorder(torch.nn.Module):
    """Wraps a model and records the batch size of every forward."""

    def __init__(self, model: TinyDiT) -> None:
        super().__init__()
        self.model, self.config, self.null_label, self.batches = model, model.config, model.null_label, []

    def forward(self, x, t, labels):
        self.batches.append((len(x), labels.tolist()))
        return self.model(x, t, labels)


def test_guidance_is_one_batched_forward_with_the_null_label():
    rec = Recorder(trained_like_model())
    sample(rec, [1, 2], SampleConfig(sampler="euler", steps=3, cfg_scale=3.0))
    assert [b for b, _ in rec.batches] == [4, 4, 4]
    assert rec.batches[0][1] == [1, 2, 13, 13]


def test_guidance_interval_skips_the_null_half_outside_it():
    rec = Recorder(trained_like_model())
    sample(rec, [1, 2], SampleConfig(sampler="euler", steps=4, cfg_scale=3.0, guidance_interval=(0.3, 0.8)))
    assert [b for b, _ in rec.batches] == [2, 2, 4, 4]  # t = 0, 0.25 outside; 0.5, 0.75 inside


def test_guided_velocity_formula_and_scale_one_is_conditional():
    model = trained_like_model(prediction="v")
    x = torch.from_numpy(initial_noise(0, range(2), (3, 16, 16)))
    t, y, null = torch.zeros(2), torch.tensor([4, 7]), torch.tensor([13, 13])
    v_c, v_u = model(x, t, y), model(x, t, null)
    assert torch.allclose(guided(v_c, v_u, 2.5), v_u + 2.5 * (v_c - v_u))
    unguided = sample(model, [4, 7], SampleConfig(sampler="euler", steps=1, cfg_scale=1.0))
    assert torch.allclose(unguided, (x + v_c).clamp(-1, 1), atol=1e-5)
    guided_img = sample(model, [4, 7], SampleConfig(sampler="euler", steps=1, cfg_scale=2.5))
    assert torch.allclose(guided_img, (x + guided(v_c, v_u, 2.5)).clamp(-1, 1), atol=1e-5)


def test_one_batched_guided_step_equals_two_separate_forwards_with_per_sample_scales():
    model = trained_like_model(prediction="x")
    x = torch.from_numpy(initial_noise(1, range(3), (3, 16, 16)))
    t, y, scale = torch.tensor([0.1, 0.5, 0.9]), torch.tensor([0, 5, 12]), torch.tensor([1.0, 2.0, 4.5])
    v_c = velocity(model, x, t, y)
    v_u = velocity(model, x, t, torch.full_like(y, model.null_label))
    expected = v_u + scale.reshape(3, 1, 1, 1) * (v_c - v_u)
    assert torch.allclose(guided_velocity(model, x, t, y, scale), expected, atol=1e-5)
    assert torch.allclose(GuidedStep(model)(x, t, y, scale), expected, atol=1e-5)  # what export-onnx traces
    assert torch.allclose(guided_velocity(model, x, t, y, torch.ones(3)), v_c, atol=1e-5)


def test_every_sampler_the_config_accepts_has_a_solver():
    from tinycats.config import SAMPLERS
    from tinycats.core.solvers import SOLVERS

    assert set(SOLVERS) == set(SAMPLERS) and all(model_calls(name, 4) >= 4 for name in SAMPLERS)
