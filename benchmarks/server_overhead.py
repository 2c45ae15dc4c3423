"""Server overhead per generation: POST responses -> next manifest ready, on a real uvicorn server.

Prints p50/p99 over many generations of: the server's own overhead (validation, optimizer tell+ask,
database transaction, from the Server-Timing header), rendering the next generation (decode and encode, ahead of
the fetches), the post's round trip, fetching every image of the next generation, and the two together: what a
rig waits for per generation. Reference: DESIGN.md's target (<= 20 ms p50 on CPU, decoding excluded) and
XDream's file-polling exchange, which alone adds over 500 ms per block.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evostim.clients.http.local_server import LocalServer

XDREAM_POLLING_MS = 500.0
TARGET_MS = 20.0


def timings(header: str) -> dict[str, float]:
    parts = (item.split(";dur=") for item in header.split(", "))
    return {name: float(value) for name, value in parts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--generations", type=int, default=100)
    parser.add_argument("--population", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="20 generations")
    args = parser.parse_args()
    generations = 20 if args.quick else args.generations
    rng = np.random.default_rng(0)
    with (
        tempfile.TemporaryDirectory() as data,
        LocalServer(Path(data)) as server,
        httpx.Client(base_url=server.url, timeout=60) as http,
    ):
        planned = {"seed": 0, "population_size": args.population, "max_generations": generations + 1}
        created = http.post("/v1/sessions", json=planned).json()  # the generator's default optimizer, as planned
        manifest = created["generation"]
        rows = []
        for _ in range(generations):
            body = {
                "responses": [
                    {"stimulus": s["id"], "counts": {"ch0": rng.poisson(8, 4).astype(float).tolist()}}
                    for s in manifest["stimuli"]
                ]
            }
            started = time.perf_counter()
            response = http.post(
                manifest["responses_url"], json=body, headers={"Idempotency-Key": manifest["responses_url"]}
            )
            round_trip = (time.perf_counter() - started) * 1e3
            response.raise_for_status()
            t = timings(response.headers["server-timing"])
            manifest = response.json()["next"]
            started = time.perf_counter()
            for stimulus in manifest["stimuli"]:  # a rig fetches every image before it shows the generation
                http.get(stimulus["url"]).raise_for_status()
            fetches = (time.perf_counter() - started) * 1e3
            overhead = t["validate"] + t["optimizer"] + t["db"]
            rows.append((overhead, t["optimizer"], t["db"], t["render"], round_trip, fetches, round_trip + fetches))
    table = np.array(rows)
    names = [
        "server overhead (no decode)",
        "  optimizer tell+ask",
        "  database commit",
        "render next generation",
        "post round trip seen by the rig",
        "fetching its images",
        "post + fetches: a generation",
    ]
    print(
        f"{generations} generations of {args.population} evolved + 4 reference images, SQLite (WAL, synchronous=FULL)"
    )
    print(f"{'':32}{'p50 ms':>9}{'p99 ms':>9}")
    for name, column in zip(names, table.T, strict=True):
        print(f"{name:32}{np.percentile(column, 50):9.2f}{np.percentile(column, 99):9.2f}")
    p50 = float(np.percentile(table[:, 0], 50))
    print(f"reference: target <= {TARGET_MS:.0f} ms; XDream file polling >= {XDREAM_POLLING_MS:.0f} ms per block")
    print(
        f"server overhead per generation: p50 {p50:.1f} ms (target {TARGET_MS:.0f} ms), "
        f"{XDREAM_POLLING_MS / p50:.0f} x less than XDream's polling alone"
    )


if __name__ == "__main__":
    main()
