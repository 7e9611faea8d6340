import itertools

import torch

from tinycats.core.ema import EMA, power_gamma


def test_decay_ramps_up_to_beta():
    ema = EMA(torch.nn.Linear(2, 2), beta=0.999)
    decays = []
    for _ in range(10_000):
        decays.append(ema.decay())
        ema.updates += 1
    assert decays[0] == 0.1 and decays[1] == 2 / 11
    assert all(a <= b for a, b in itertools.pairwise(decays))
    assert decays[-1] == 0.999


def test_update_is_the_moving_average():
    model = torch.nn.Linear(3, 1)
    ema = EMA(model, beta=0.5)
    start = [p.detach().clone() for p in ema.model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)  # decay 0.1 on the first update
    for e, s, p in zip(ema.model.parameters(), start, model.parameters()):
        assert torch.allclose(e, 0.1 * s + 0.9 * p)
    for _ in range(200):
        ema.update(model)
    for e, p in zip(ema.model.parameters(), model.parameters()):
        assert torch.allclose(e, p, atol=1e-6)
    assert not any(p.requires_grad for p in ema.model.parameters())


def test_state_round_trip():
    model = torch.nn.Linear(3, 2)
    ema = EMA(model, beta=0.9)
    for _ in range(3):
        ema.update(model)
    other = EMA(torch.nn.Linear(3, 2), beta=0.9)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 3 and other.decay() == ema.decay()
    assert all(torch.equal(a, b) for a, b in zip(other.model.parameters(), ema.model.parameters()))


def test_the_multi_tensor_update_is_bitwise_the_per_tensor_lerp_and_skip_is_a_no_op():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 3))
    ema, plain, skipped = EMA(model, 0.99), EMA(model, 0.99), EMA(model, 0.99)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    reference = [e.detach().clone() for e in plain.model.parameters()]
    weight = 1.0 - plain.decay()
    for r, p in zip(reference, model.parameters()):
        r.lerp_(p.detach(), weight)  # one tensor at a time, the textbook update
    ema.update(model, skip=torch.tensor(0.0))
    before = [e.detach().clone() for e in skipped.model.parameters()]
    skipped.update(model, skip=torch.tensor(1.0))
    assert all(torch.equal(a, b) for a, b in zip(ema.model.parameters(), reference))
    assert all(torch.equal(a, b) for a, b in zip(skipped.model.parameters(), before))


def test_power_gamma_gives_a_profile_of_that_relative_width():
    # The profile (gamma + 1) x^gamma on [0, 1], its std measured by quadrature, not by the closed form.
    x = torch.linspace(0, 1, 200_001, dtype=torch.float64)
    for sigma_rel in (0.05, 0.1, 0.2):
        gamma = power_gamma(sigma_rel)
        density = (gamma + 1) * x**gamma
        mean = torch.trapezoid(x * density, x)
        std = torch.trapezoid((x - mean) ** 2 * density, x).sqrt()
        assert abs(std.item() - sigma_rel) < 1e-6
    assert abs(power_gamma(0.05) - 16.97) < 0.01 and abs(power_gamma(0.1) - 6.94) < 0.01  # EDM2, section 3.1


def test_power_ema_is_the_mean_of_every_weight_so_far_under_the_profile_tau_to_the_gamma():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3).double()
    ema = EMA(model, beta=0.999, sigma_rel=0.1)
    gamma = power_gamma(0.1)
    history = []
    for _ in range(50):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        history.append([p.detach().clone() for p in model.parameters()])
        ema.update(model)
    # The weights held during step tau (tau - 1, tau] get the profile's integral there: tau^(g+1) - (tau-1)^(g+1).
    tau = torch.arange(1, 51, dtype=torch.float64)
    weights = tau ** (gamma + 1) - (tau - 1) ** (gamma + 1)
    for i, e in enumerate(ema.model.parameters()):
        expected = sum(w * h[i] for w, h in zip(weights, history)) / weights.sum()
        assert torch.allclose(e, expected, rtol=1e-9, atol=1e-12)
    # The starting weights get no share at all: the first update copies the trained weights.
    assert EMA(model, 0.999, sigma_rel=0.1).decay() == 0.0
