"""The page's screenshots in docs/ (desktop and phone width), from a real generation with a
trained model, taken by the browser tests' Chromium and driver (web/e2e/drive.mjs).

    make demo && make web
    python benchmarks/web_screenshots.py --model demo/hub --out docs

Draws every breed (a row each, seed 0, the model's recommended sampler) on WASM: four images per
breed at 1200 x 900 (docs/web-page.png), two at 390 x 844 (docs/web-phone.png); fails unless both
generations finished.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

from tinycats.web import make_server, serve_in_background

ROOT = Path(__file__).resolve().parents[1]
SHOTS = {"web-page.png": ([1200, 900], 4), "web-phone.png": ([390, 844], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path("demo/hub"), help="a staged repo folder (default: demo/hub)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where the PNGs go (default: docs/)")
    parser.add_argument("--seed", type=int, default=0, help="the seed of every row (default: 0)")
    args = parser.parse_args()
    server = make_server(str(args.model), port=0)
    serve_in_background(server)
    url = f"http://127.0.0.1:{server.server_address[1]}/?breed=all&ep=wasm&generate=1&seed={args.seed}"
    visits = [
        {"url": f"{url}&n={n}", "viewport": size, "screenshot": str((args.out / name).resolve())}
        for name, (size, n) in SHOTS.items()
    ]
    try:
        run = subprocess.run(
            ["node", "e2e/drive.mjs", json.dumps({"visits": visits, "timeoutMs": 300_000})],
            cwd=ROOT / "web", capture_output=True, text=True, check=True,
        )  # fmt: skip
    finally:
        server.shutdown()
    for name, result in zip(SHOTS, json.loads(run.stdout.strip().splitlines()[-1])):
        if result["state"] != "done":
            raise SystemExit(f"{name}: the page ended in {result['state']}: {result['message']}")
        print(f"{args.out / name}: {result['message']} · {result['status']}")


if __name__ == "__main__":
    main()
