"""The generative model, what a reader compares with DiT's models.py and minRF's rf.py: the
network (model), the flow-matching path and loss (flow), the ODE solvers and initial noise
(solvers, noise, torch-free so the ONNX-only sampler shares them), guided sampling (sampling) and
the weight average (ema). Core imports only the foundation modules (config, breeds, errors,
runtime), never data, training, evaluation, export, the Hub or the CLI."""
