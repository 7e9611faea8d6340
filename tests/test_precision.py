"""The fast CPU path: which precision "auto" trains in, the bf16 attention path, the exact GELU, and
that a bf16 run still resumes bit for bit and records what it computed in."""

import json
import math
import threading

import pytest
import torch
import torch.nn.functional as F

from tinycats import checkpoint
from tinycats.config import RunConfig, load_config
from tinycats.core.model import TinyDiT, attention
from tinycats.training import precision
from tinycats.training.loop import train

from conftest import tiny_config

CPU = torch.device("cpu")


class FakeClock:
    """perf_counter for the probe: a trial in precision P advances it by seconds[P]."""

    def __init__(self, seconds: dict[str, float]) -> None:
        self.now, self.seconds, self.calls = 0.0, seconds, []

    def trial(self, name: str) -> None:
        self.calls.append(name)
        self.now += self.seconds[name]

    def perf_counter(self) -> float:
        return self.now


@pytest.mark.parametrize(
    "seconds, expected",
    [({"fp32": 2.0, "bf16": 1.0}, "bf16"), ({"fp32": 1.1, "bf16": 1.0}, "fp32"), ({"fp32": 1.0, "bf16": 2.0}, "fp32")],
)
def test_auto_keeps_bf16_only_where_the_probe_measures_it_clearly_faster(monkeypatch, seconds, expected):
    clock = FakeClock(seconds)
    monkeypatch.setattr(precision, "cpu_bf16_units", lambda: "AMX")
    monkeypatch.setattr(precision.time, "perf_counter", clock.perf_counter)
    chosen = precision.choose(CPU, "auto", clock.trial, repeats=2)
    assert chosen.precision == expected
    assert f"{seconds['fp32'] / seconds['bf16']:.2f}x" in chosen.reason and "AMX" in chosen.reason
    assert clock.calls == ["fp32", "bf16"] * 3  # one untimed call of each, then in turns


def test_auto_is_fp32_without_probing_on_a_cpu_without_bf16_units_and_what_is_set_is_kept(monkeypatch):
    def never(name: str) -> None:
        raise AssertionError("no probe was needed")

    monkeypatch.setattr(precision, "cpu_bf16_units", lambda: None)
    assert precision.choose(CPU, "auto", never) == precision.Choice("fp32", "auto: this CPU has no bf16 instructions")
    assert precision.choose(CPU, "bf16", never).precision == "bf16"
    assert precision.choose(torch.device("cuda"), "auto", never).precision == "bf16"
    old = {"config": {"train": {"precision": "auto"}}}  # a checkpoint from before auto was resolved: it ran fp32 here
    assert precision.choose(CPU, "auto", never, resume=old).precision == "fp32"
    assert precision.choose(CPU, "auto", never, resume={"config": {"train": {"precision": "bf16"}}}).precision == "bf16"


def test_the_probe_changes_nothing_the_run_computes():
    cfg = tiny_config()
    torch.manual_seed(0)
    model = TinyDiT(cfg.model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    run = precision.trial(model, cfg.model, batch_rows=4, device=CPU)
    run("fp32")
    run("bf16")
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def reference_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q kᵀ / √d) v in float64, written out."""
    q, k, v = q.double(), k.double(), v.double()
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1) @ v


def test_attention_in_bf16_on_the_cpu_is_the_attention_formula_and_fp32_stays_sdpa():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 64, 32, generator=g) for _ in range(3))
    assert torch.equal(attention(q, k, v), F.scaled_dot_product_attention(q, k, v))
    qb, kb, vb = q.bfloat16(), k.bfloat16(), v.bfloat16()
    out = attention(qb, kb, vb)
    assert out.dtype == torch.bfloat16
    want = reference_attention(qb, kb, vb)
    # bf16 keeps 8 significant bits: the scores, the probabilities and the output each round once.
    assert (out.double() - want).abs().max() < 3 * 2**-8 * want.abs().max()
    # ... and the gradients flow through it as through the formula
    qg = qb.clone().requires_grad_()
    attention(qg, kb, vb).float().sum().backward()
    q64 = qb.double().requires_grad_()
    reference_attention(q64, kb, vb).sum().backward()
    assert (qg.grad.double() - q64.grad).abs().max() < 0.05 * q64.grad.abs().max()


def test_presets_use_the_exact_gelu_and_a_checkpoint_without_the_setting_keeps_the_tanh_form():
    assert load_config(None, {"model": {"preset": "tinydit-128"}}).model.activation == "gelu"
    saved = load_config(None, {"model": {"preset": "tinydit-test"}}).to_dict()
    del saved["model"]["activation"]
    old = RunConfig.from_dict(saved).model
    assert old.activation == "gelu-tanh"
    x = torch.linspace(-4, 4, 101)
    exact = 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    tanh_form = 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    for activation, want in (("gelu", exact), ("gelu-tanh", tanh_form)):
        old.activation = activation
        assert torch.allclose(TinyDiT(old).blocks[0].mlp[1](x), want, atol=1e-6)
    assert (exact - tanh_form).abs().max() > 1e-4  # the two really differ: the test can tell them apart


def test_a_bf16_run_records_its_precision_and_resumes_bitwise(image_folder, tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_units", lambda: "AMX")
    monkeypatch.setattr(precision, "probe", lambda trial, repeats: (2.0, 1.0))  # as if bf16 were twice as fast here
    cfg = tiny_config(steps=6, checkpoint_interval=3)
    train(cfg, image_folder, tmp_path / "a", tmp_path / "log_a", progress=False)
    state = checkpoint.load(checkpoint.train_path(tmp_path / "a", 3))
    assert state["config"]["train"]["precision"] == "bf16"
    log = (tmp_path / "log_a" / "training.log").read_text()
    assert "bf16 (auto: a step measured now ran 2.00x as fast in bf16 as in fp32 on this CPU (AMX))" in log
    monkeypatch.setattr(precision, "probe", lambda trial, repeats: (1.0, 2.0))  # the resume does not probe again
    train(
        tiny_config(steps=6, checkpoint_interval=3),
        image_folder,
        tmp_path / "b",
        tmp_path / "log_b",
        resume=state,
        progress=False,
    )
    a = checkpoint.load(checkpoint.train_path(tmp_path / "a", 6))
    b = checkpoint.load(checkpoint.train_path(tmp_path / "b", 6))
    assert b["config"]["train"]["precision"] == "bf16"
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
        assert torch.equal(a["ema"]["model"][key], b["ema"]["model"][key]), key
    fp32 = tiny_config(steps=6, checkpoint_interval=3, precision="fp32")
    train(fp32, image_folder, tmp_path / "c", tmp_path / "log_c", progress=False)
    c = checkpoint.load(checkpoint.train_path(tmp_path / "c", 6))
    assert any(not torch.equal(a["model"][k], c["model"][k]) for k in a["model"])  # bf16 really ran
    losses = [json.loads(line)["loss"] for line in (tmp_path / "log_a" / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(x) for x in losses)


def test_the_demo_path_bf16_and_compiled_resumes_bitwise(image_folder, tmp_path, monkeypatch):
    """What the cpu-demo preset runs on a CPU where bf16 wins: autocast and torch.compile together."""
    monkeypatch.setattr(precision, "cpu_bf16_units", lambda: "AMX")
    monkeypatch.setattr(precision, "probe", lambda trial, repeats: (2.0, 1.0))
    cfg = tiny_config(steps=4, checkpoint_interval=2, compile=True)
    train(cfg, image_folder, tmp_path / "a", tmp_path / "log_a", progress=False)
    assert (
        "bf16 (auto: a step measured now ran 2.00x as fast in bf16 as in fp32 on this CPU (AMX)), compiled"
        in (tmp_path / "log_a" / "training.log").read_text()
    )
    state = checkpoint.load(checkpoint.train_path(tmp_path / "a", 2))
    resumed = tiny_config(steps=4, checkpoint_interval=2, compile=True)
    train(resumed, image_folder, tmp_path / "b", tmp_path / "log_b", resume=state, progress=False)
    a = checkpoint.load(checkpoint.train_path(tmp_path / "a", 4))
    b = checkpoint.load(checkpoint.train_path(tmp_path / "b", 4))
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(torch.equal(a["ema"]["model"][k], b["ema"]["model"][k]) for k in a["model"])


def test_a_cpu_run_computes_with_deterministic_kernels_and_gives_the_setting_back(image_folder, tmp_path):
    """Compiled CPU kernels add scatter-type gradients with atomics unless deterministic algorithms
    are on (two demo-sized compiled runs differed in every weight); the caller's setting returns."""
    seen = []
    cfg = tiny_config(steps=2, checkpoint_interval=1)
    on_checkpoint = lambda path: seen.append(torch.are_deterministic_algorithms_enabled())  # noqa: E731
    assert not torch.are_deterministic_algorithms_enabled()
    train(cfg, image_folder, tmp_path / "ck", tmp_path / "out", progress=False, on_checkpoint=on_checkpoint)
    assert seen == [True, True] and not torch.are_deterministic_algorithms_enabled()


def test_compiling_on_a_cpu_without_a_cxx_compiler_is_one_clear_error_before_any_work(image_folder, tmp_path, monkeypatch):
    from tinycats import runtime
    from tinycats.errors import UsageError

    monkeypatch.setattr(runtime.shutil, "which", lambda name: None)
    with pytest.raises(UsageError, match=r"needs a C\+\+ compiler.*--no-compile"):
        train(tiny_config(compile=True), image_folder, tmp_path / "ck", tmp_path / "out", progress=False)
    assert not (tmp_path / "ck").exists() and not (tmp_path / "out").exists()


def test_a_probe_result_is_kept_per_machine_and_network_so_a_rerun_decides_alike(monkeypatch, machine_cache):
    """A run started again (killed before its first checkpoint, or a second seed) must compute as
    the first did, even where the probe's timings sit either side of the threshold."""
    monkeypatch.setattr(precision, "cpu_bf16_units", lambda: "AMX")
    timings = iter([(2.0, 1.0), (1.0, 2.0), (1.0, 2.0)])  # the probe would flip after its first run
    monkeypatch.setattr(precision, "probe", lambda trial, repeats: next(timings))
    presets = ("tinydit-test", "tinydit-xs")
    small, wide = (precision.probe_facts(load_config(None, {"model": {"preset": p}}).model, 8) for p in presets)
    first = precision.choose(CPU, "auto", print, network=small)
    again = precision.choose(CPU, "auto", print, network=small)
    assert first.precision == again.precision == "bf16"
    assert "measured now" in first.reason and "measured by an earlier run on this machine" in again.reason
    assert "2.00x" in again.reason
    assert precision.choose(CPU, "auto", print, network=wide).precision == "fp32"  # another network: probed anew
    kept = json.loads((machine_cache / "tinycats" / "precision.json").read_text())
    assert sorted(kept.values()) == [0.5, 2.0]


def test_an_unreadable_kept_file_means_probing_again_and_is_replaced(monkeypatch, machine_cache):
    monkeypatch.setattr(precision, "cpu_bf16_units", lambda: "AMX")
    monkeypatch.setattr(precision, "probe", lambda trial, repeats: (3.0, 1.0))
    path = machine_cache / "tinycats" / "precision.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"truncated": ')
    chosen = precision.choose(CPU, "auto", print, network={"rows": 4})
    assert chosen.precision == "bf16" and "measured now" in chosen.reason
    assert list(json.loads(path.read_text()).values()) == [3.0]
    assert not [p for p in path.parent.iterdir() if p.name not in ("precision.json", "precision.lock")]  # no temp file


def test_two_runs_started_together_take_turns_and_the_second_reuses_the_first_probe(monkeypatch, machine_cache):
    """Without the lock the second would probe while the first does, get the other answer here
    (its timings say fp32), and compute differently from a run it should equal."""
    monkeypatch.setattr(precision, "cpu_bf16_units", lambda: "AMX")
    inside, release = threading.Event(), threading.Event()
    timings = iter([(2.0, 1.0), (1.0, 2.0)])

    def probe(trial, repeats):
        inside.set()
        release.wait(30)
        return next(timings)

    monkeypatch.setattr(precision, "probe", probe)
    chosen = {}

    def run(name: str) -> None:
        chosen[name] = precision.choose(CPU, "auto", print, network={"rows": 4})

    first = threading.Thread(target=run, args=("first",))
    first.start()
    assert inside.wait(30)  # the first is inside its probe, holding its turn
    second = threading.Thread(target=run, args=("second",))
    second.start()
    second.join(1.0)  # time for it to reach the kept file (without the lock: to read it empty and probe)
    release.set()
    first.join(30)
    second.join(30)
    assert chosen["first"].precision == chosen["second"].precision == "bf16"
    assert "measured by an earlier run on this machine" in chosen["second"].reason
