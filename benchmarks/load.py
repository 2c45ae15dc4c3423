"""Load: many concurrent sessions against one real server, in identical rounds; latency, errors and memory per round.

Each round starts ``--sessions`` sessions at once (simulated rigs: httpx, one asyncio task per session). Every
rig fetches every image of its open generation (PNG, one request each, as a rig does before it shows them), posts
Poisson counts for them with an Idempotency-Key, and goes on with the next generation, ``--generations`` times.
After each round the server's resident memory (RSS, from /proc) is read, with what /metrics says of its caches.

Each round also prints the post p99 of each generation: sessions created together refresh metric-cma's metric on
the same generation, and that generation's posts must not be slower than twice the others' (issue #34).
``--database postgres`` runs the server on a throwaway PostgreSQL cluster (tests/postgres.py) instead of SQLite.

Reference (DESIGN.md): post -> next manifest p99 <= 1.5 s with 50 concurrent sessions on a 2-core machine, no
generation (a metric refresh included) slower than 2x the others, and the server's memory flat after the first
round (its caches are bounded: image cache, optimizer cache); issue #34: RSS growth from round 2 to 3 <= 50 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evostim.clients.http.local_server import LocalServer

TARGET_POST_P99_S = 1.5
TARGET_GENERATION_RATIO = 2.0  # the slowest generation's post p99 over the median of the other generations'
TARGET_RSS_GROWTH_MB = 50.0  # from round 2 to round 3


@dataclass
class Round:
    """What one round measured."""

    post_s: list[float] = field(default_factory=list)
    post_by_generation: dict[int, list[float]] = field(default_factory=dict)
    image_s: list[float] = field(default_factory=list)
    create_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # the server's own account of each post (its Server-Timing header, ms): where the time not spent queueing went
    post_parts: dict[str, list[float]] = field(default_factory=dict)
    # a rig's wait between generations: its post sent -> the last image of the next generation fetched
    turnaround_s: list[float] = field(default_factory=list)


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB (Linux /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match[1]) / 1024 if match else float("nan")


def metric(text: str, name: str) -> float:
    """The value of one unlabelled sample of the Prometheus text exposition."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match[1]) if match else float("nan")


async def timed(measured: list[float], errors: list[str], call: Any) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        response: httpx.Response = await call
    except httpx.HTTPError as error:
        errors.append(f"{type(error).__name__}: {error}")
        return None
    measured.append(time.perf_counter() - started)
    if response.is_error:
        errors.append(f"{response.status_code} {response.request.url.path}: {response.text[:200]}")
        return None
    return response


async def rig(http: httpx.AsyncClient, seed: int, args: argparse.Namespace, out: Round) -> None:
    """One simulated rig: create a session, then fetch every image and post counts, generation after generation."""
    rng = np.random.default_rng(seed)
    body = {"seed": seed, "population_size": args.population, "max_generations": args.generations + 1}
    created = await timed(out.create_s, out.errors, http.post("/v1/sessions", json=body))
    if created is None:
        return
    manifest = created.json()["generation"]
    posted = None
    for number in range(args.generations):
        for stimulus in manifest["stimuli"]:
            await timed(out.image_s, out.errors, http.get(stimulus["url"]))
        if posted is not None:
            out.turnaround_s.append(time.perf_counter() - posted)
        posted = time.perf_counter()
        counts = [
            {"stimulus": s["id"], "counts": {"ch0": rng.poisson(8, 2).astype(float).tolist()}}
            for s in manifest["stimuli"]
        ]
        key = {"Idempotency-Key": manifest["responses_url"]}
        measured = out.post_by_generation.setdefault(number, [])
        answer = await timed(
            measured, out.errors, http.post(manifest["responses_url"], json={"responses": counts}, headers=key)
        )
        out.post_s.extend(measured[-1:] if answer is not None else [])
        for name, ms in server_timing(answer):
            out.post_parts.setdefault(name, []).append(ms)
        if answer is None or answer.json()["next"] is None:
            return
        manifest = answer.json()["next"]


async def one_round(url: str, number: int, args: argparse.Namespace) -> Round:
    out = Round()
    limits = httpx.Limits(max_connections=args.sessions, max_keepalive_connections=args.sessions)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        seeds = range(number * args.sessions, (number + 1) * args.sessions)
        await asyncio.gather(*(rig(http, seed, args, out) for seed in seeds))
    return out


def server_timing(response: httpx.Response | None) -> list[tuple[str, float]]:
    """The (name, ms) pairs of a response's Server-Timing header (none for a failed request)."""
    header = "" if response is None else response.headers.get("server-timing", "")
    return [(name, float(ms)) for name, ms in re.findall(r"(\w+);dur=([\d.]+)", header)]


def percentiles(values: list[float]) -> str:
    if not values:
        return f"{'-':>9}{'-':>9}"
    ms = np.array(values) * 1e3
    return f"{np.percentile(ms, 50):9.1f}{np.percentile(ms, 99):9.1f}"


def by_generation(result: Round) -> tuple[str, float]:
    """Each generation's post p99 (s) as text, and the slowest one's over the median of the others'."""
    p99 = {g: float(np.percentile(v, 99)) for g, v in sorted(result.post_by_generation.items()) if v}
    if len(p99) < 2:
        return "", float("nan")
    slowest = max(p99, key=lambda g: p99[g])
    others = float(np.median([v for g, v in p99.items() if g != slowest]))
    text = " ".join(f"g{g}:{v:.2f}{'*' if g == slowest else ''}" for g, v in p99.items())
    return text, p99[slowest] / others


@contextlib.contextmanager
def database(kind: str) -> Iterator[dict[str, str]]:
    """The server's environment for ``kind``: SQLite in its data folder, or a throwaway PostgreSQL cluster."""
    if kind == "sqlite":
        yield {}
        return
    from tests.postgres import PostgresCluster, postgres_bindir

    bindir = postgres_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL 15 is not installed (tests/postgres.py says where it looks)")
    cluster = PostgresCluster(bindir)
    cluster.start()
    try:
        yield {"EVOSTIM_DATABASE_URL": cluster.create_database("evostim_load")}
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=50, help="concurrent sessions per round")
    parser.add_argument("--generations", type=int, default=8, help="generations each session runs per round")
    parser.add_argument("--population", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--quick", action="store_true", help="10 sessions, 3 generations")
    args = parser.parse_args()
    if args.quick:
        args.sessions, args.generations = 10, 3
    with (
        tempfile.TemporaryDirectory() as data,
        database(args.database) as env,
        LocalServer(Path(data), env=env) as server,
    ):
        assert server.pid is not None
        print(f"{args.rounds} rounds of {args.sessions} concurrent sessions x {args.generations} generations of "
              f"{args.population} evolved + 4 reference images (every image fetched as PNG); "
              f"{args.database}")  # fmt: skip
        print(f"server RSS at start: {rss_mb(server.pid):.0f} MB")
        header = (
            f"{'round':<6}{'post p50':>9}{'p99 ms':>9}{'image p50':>10}{'p99 ms':>9}{'create p50':>11}{'p99 ms':>9}"
        )
        print(header + f"{'requests':>9}{'errors':>7}{'wall s':>8}{'RSS MB':>8}{'img cache MB':>13}{'optimizers':>11}")
        rss = []
        post_p99 = []
        ratios: list[float] = []
        for number in range(args.rounds):
            started = time.perf_counter()
            result = asyncio.run(one_round(server.url, number, args))
            wall = time.perf_counter() - started
            metrics = httpx.get(f"{server.url}/metrics", timeout=30).text
            rss.append(rss_mb(server.pid))
            post_p99.append(float(np.percentile(result.post_s, 99)) if result.post_s else float("nan"))
            requests = len(result.post_s) + len(result.image_s) + len(result.create_s)
            print(f"{number + 1:<6}{percentiles(result.post_s)} {percentiles(result.image_s)}  "
                  f"{percentiles(result.create_s)}{requests:9d}{len(result.errors):7d}{wall:8.1f}{rss[-1]:8.0f}"
                  f"{metric(metrics, 'evostim_image_cache_bytes') / 2**20:13.1f}"
                  f"{metric(metrics, 'evostim_optimizer_cache_sessions'):11.0f}", flush=True)  # fmt: skip
            generations, ratio = by_generation(result)
            ratios.append(ratio)
            print(f"      post p99 s by generation: {generations} (slowest / median of others: {ratio:.2f})")
            parts = ", ".join(
                f"{name} {np.percentile(ms, 50):.0f} / {np.percentile(ms, 99):.0f}"
                for name, ms in result.post_parts.items()
            )
            print(f"      inside the post (server's timing, p50 / p99 ms): {parts}")
            print(f"      a rig's wait, post -> next generation's images all fetched (p50 / p99 ms):"
                  f"{percentiles(result.turnaround_s)}")  # fmt: skip
            for error in result.errors[:5]:
                print(f"    {error}")
    growth = rss[-1] - rss[0]
    print(f"RSS after round 1: {rss[0]:.0f} MB, after round {args.rounds}: {rss[-1]:.0f} MB ({growth:+.0f} MB)")
    print(f"post p99 (worst round): {max(post_p99):.2f} s (target <= {TARGET_POST_P99_S} s)")
    print(f"slowest generation's post p99 / the others' (worst round): {max(ratios):.2f} "
          f"(target <= {TARGET_GENERATION_RATIO})")  # fmt: skip
    if len(rss) >= 3:
        print(f"RSS growth from round 2 to 3: {rss[2] - rss[1]:+.0f} MB (target <= {TARGET_RSS_GROWTH_MB:.0f} MB)")


if __name__ == "__main__":
    main()
