"""Shipping the generator: the ONNX export and its check (onnx), the file contract shared with
every reader (contract), sampling with onnxruntime and numpy alone (onnx_sampler) and the
inference benchmark (benchmark, benchmark_report)."""
