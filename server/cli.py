"""The ``evostim`` command: ``serve`` runs the server, ``demo`` runs an in-silico closed-loop evolution,
``metric`` computes a generator's metric eigenbasis for the ``subspace`` optimizer, ``rig`` bridges a rig
that exchanges files instead of HTTP."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from evostim.extras import MissingExtra, require

__all__ = ["main"]


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    from evostim.server.app import create_app
    from evostim.server.config import Settings

    overrides = {"data_dir": Path(args.data_dir)} if args.data_dir else {}
    app = create_app(Settings(**overrides))  # type: ignore[arg-type]
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=10)


def _demo(args: argparse.Namespace) -> None:
    from evostim.clients.demo import run_demo

    run_demo(
        out_dir=Path(args.out),
        unit=args.unit,
        generations=args.generations,
        seed=args.seed,
        repetitions=args.repetitions,
        code_norm=None if args.unconstrained else "auto",
    )


def _metric(args: argparse.Namespace) -> None:
    require("scipy", extra="metric", feature="the metric eigenbasis")  # before loading anything
    import numpy as np
    import torch

    from evostim.generators import GeneratorError, generator_spec, load_generator
    from evostim.generators.metric import metric_eigenbasis, spectrum_coverage

    try:
        spec = generator_spec(args.generator)
        generator = load_generator(spec.name, args.device, Path(args.weights_dir))
    except GeneratorError as error:
        raise SystemExit(f"evostim metric: {error}") from None
    codes = torch.as_tensor(spec.sample_prior(np.random.default_rng(args.seed), args.samples))
    result = metric_eigenbasis(
        generator.module, codes.float().to(generator.device), args.top, generator=spec.name, seed=args.seed
    )
    out = Path(args.out or Path(args.weights_dir) / f"{spec.name}.metric.npz")
    out.parent.mkdir(parents=True, exist_ok=True)
    result.save(out)
    held = result.eigenvalues.sum() / result.trace
    ninety, ninety_nine = spectrum_coverage(result.eigenvalues, result.trace)
    print(f"{spec.name}: metric over {args.samples} codes; top {args.top} of {spec.latent_dim} directions hold "
          f"{held:.1%} of the trace; 90% in {ninety}, 99% in {ninety_nine} directions "
          f"(more than {args.top} means: not within the top {args.top})")  # fmt: skip
    print(f'eigenbasis saved to {out} (subspace optimizer: "basis": "{out.stem}")')


def _rig(args: argparse.Namespace) -> None:
    from evostim.clients.client import Client
    from evostim.clients.rig_bridge import RigBridge

    with Client(args.server, token=args.token or os.environ.get("EVOSTIM_TOKEN")) as client:
        print(f"bridging session {args.session} through {args.watch} (Ctrl-C to stop)", flush=True)
        RigBridge(client, args.session, Path(args.watch)).run(poll_seconds=args.poll)
        print("the session finished")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="evostim", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP server (settings from EVOSTIM_* variables)")
    serve.add_argument("--host", default=os.environ.get("EVOSTIM_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("EVOSTIM_PORT", "8000")))
    serve.add_argument("--data-dir", help="directory of the SQLite file (default: EVOSTIM_DATA_DIR or ./data)")
    serve.add_argument("--log-level", default="warning")
    serve.set_defaults(run=_serve)

    demo = commands.add_parser("demo", help="evolve images for a simulated neuron against a real local server")
    demo.add_argument("--out", default="out/demo", help="where the table, montage and score curve go")
    demo.add_argument("--unit", default="onet.conv3.9", help="simulated unit, net.layer.channel[@y,x]")
    demo.add_argument("--generations", type=int, default=60)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--repetitions", type=int, default=2, help="presentations per image")
    demo.add_argument("--unconstrained", action="store_true", help="let the code norm grow (super-stimuli)")
    demo.set_defaults(run=_demo)

    metric = commands.add_parser("metric", help="top eigenvectors of a generator's metric, saved for `subspace`")
    metric.add_argument("--generator", default="dcgan-faces")
    metric.add_argument("--samples", type=int, default=32, help="codes the metric is averaged over")
    metric.add_argument("--top", type=int, default=40, help="eigenvectors to keep")
    metric.add_argument("--seed", type=int, default=0)
    metric.add_argument("--device", default="auto")
    metric.add_argument("--weights-dir", default=os.environ.get("EVOSTIM_WEIGHTS_DIR", "weights"))
    metric.add_argument("--out", help="file to write (default: WEIGHTS_DIR/GENERATOR.metric.npz)")
    metric.set_defaults(run=_metric)

    rig = commands.add_parser("rig", help="exchange a session's generations with a rig through files in a folder")
    rig.add_argument("--watch", required=True, help="the folder shared with the rig")
    rig.add_argument("--session", required=True, help="the session to run")
    rig.add_argument("--server", default="http://127.0.0.1:8000")
    rig.add_argument("--token", help="bearer token (default: EVOSTIM_TOKEN)")
    rig.add_argument("--poll", type=float, default=0.2, help="seconds between looks for the rig's responses file")
    rig.set_defaults(run=_rig)

    args = parser.parse_args(argv)
    try:
        args.run(args)
    except MissingExtra as error:  # one line naming the extra to install, not a traceback
        raise SystemExit(f"evostim {args.command}: {error}") from None
