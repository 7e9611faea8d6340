"""tinycats web: the browser generator, served locally with cross-origin isolation."""

from __future__ import annotations

import argparse

from tinycats.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "web",
        help="serve the browser generator (onnxruntime-web) for a model folder or hf://OWNER/REPO",
        description="Serve the browser page (the wheel carries it; in a source checkout build it with `make web`) "
        "with COOP/COEP headers, so WASM runs multi-threaded, and a local model folder at /model/. "
        "The page reads the model's onnx/generator.json (docs/web.md).",
    )
    p.add_argument("--model", default="demo/hub", help="a repo folder with onnx/ (default: demo/hub) or hf://OWNER/REPO[@REV]")
    p.add_argument("--port", type=int, default=8000, help="(default: 8000)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import webbrowser

    from tinycats.web import make_server

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a port number (0-65535)")
    server = make_server(args.model, args.port, args.host)
    url = f"http://{args.host}:{server.server_address[1]}/"
    print(f"serving the tinycats page at {url} (model: {args.model}); Ctrl-C stops", flush=True)
    if args.open:
        webbrowser.open(url)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
