"""onnx/sample.py, the repo's sampler for people who have only onnxruntime, numpy and Pillow.

It is export/standalone.py with the two modules it imports from tinycats pasted in ahead of it
(core/noise.py, core/solvers.py, which import nothing of tinycats themselves), so the staged file
runs the very definitions of the noise and the solvers that `tinycats sample --onnx` runs: one
source, no second copy to drift.
"""

from __future__ import annotations

import ast
import inspect

FUTURE = "from __future__ import annotations"


def _body(source: str) -> tuple[str, str]:
    """(docstring, the rest) of a module's source, without `from __future__` and tinycats imports."""
    tree = ast.parse(source)
    lines = source.splitlines()
    doc_end = tree.body[0].end_lineno if isinstance(tree.body[0], ast.Expr) else 0
    kept = [line for line in lines[doc_end:] if line.strip() != FUTURE and not line.startswith("from tinycats")]
    return "\n".join(lines[:doc_end]), "\n".join(kept).strip("\n")


def sampler_source() -> str:
    """The text of onnx/sample.py."""
    from tinycats.core import noise, solvers
    from tinycats.export import standalone

    doc, main = _body(inspect.getsource(standalone))
    pasted = [f"# --- tinycats/{m.__name__.split('.', 1)[1].replace('.', '/')}.py ---\n" + _body(inspect.getsource(m))[1]
              for m in (noise, solvers)]  # fmt: skip
    return "\n\n\n".join(["#!/usr/bin/env python3\n" + doc + "\n\n" + FUTURE, *pasted, "# --- the sampler ---\n" + main]) + "\n"
