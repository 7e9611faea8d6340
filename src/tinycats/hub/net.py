"""What a failed Hub request raises: OSError (huggingface_hub's HTTP errors are OSErrors) or the
HTTP client's own transport errors. huggingface_hub 1.x uses httpx, 2.x httpx2; whichever is
installed is asked, so the loaders and the uploader catch network failures and nothing else."""

from __future__ import annotations

import importlib


def network_errors() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = [OSError]
    for name in ("httpx2", "httpx"):
        try:
            found.append(importlib.import_module(name).HTTPError)
        except (ImportError, AttributeError):
            continue
    return tuple(found)
