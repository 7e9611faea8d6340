"""tinycats: a tiny breed-conditional image generator (TinyDiT + flow matching).

`load_generator` and `generate` are imported on first use, so that the parts that must work
without PyTorch (the ONNX sampler) can be imported from a torch-free environment.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "generate", "load_generator"]


def __getattr__(name: str) -> Any:
    if name in ("generate", "load_generator"):
        from tinycats import api

        return getattr(api, name)
    raise AttributeError(f"module 'tinycats' has no attribute {name!r}")
