"""In-process cost of one request, in CPU microseconds: the POST floor against the predict route.

Steps: build the fixture model and the app ``http_bench.py`` serves
(``floor_app.app_with_floor``, settings from the environment, logs at WARNING);
run its lifespan start-up and wait until it is ready; then call the app itself
with a prebuilt ASGI scope, ``receive`` and ``send`` (no socket, no server),
taking the routes in turn for ``--rounds`` rounds of ``--requests`` requests
each, and print each route's median CPU time per request (this thread's CPU
clock, so other processes on a loaded machine barely move it) and its
difference from the POST floor.

``--profile`` adds cProfile's top functions for ``/v1/predict``. ``--gc N`` drives
N predictions, 16 in flight, with a timer on every garbage collection, prints
the pauses per generation, then the CPU time of one full collection of the heap
as served (most of it frozen at start-up) and unfrozen. In-process, requests
leave almost nothing for the collector; under a real server, objects of the
requests in flight get promoted and a full collection comes every few seconds,
so its length is the stall.

Usage: python services/churn-api/bench/route_cost.py [--rounds 15] [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import hashlib
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from churn_api.fixture import fixture_onnx_bytes
from churn_api.routes import ServiceState
from floor_app import FLOOR_PATH, app_with_floor
from http_bench import RECORD
from litestar import Litestar

BODY = json.dumps(RECORD).encode()
# label, path, query string
ROUTES = (
    ("POST floor", FLOOR_PATH, b""),
    ("/v1/predict", "/v1/predict", b""),
    ("/v1/predict?explain=true", "/v1/predict", b"explain=true"),
)
Call = Callable[[], Awaitable[None]]


def _request(app: Litestar, path: str, query: bytes, *, interleave: bool = False) -> Call:
    """One POST of ``BODY`` to ``path``, as Granian would hand it to the app.

    With ``interleave``, ``receive`` and ``send`` yield to the event loop once
    each, as a server's do, so concurrent calls overlap.
    """
    template = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    first = {"type": "http.request", "body": BODY, "more_body": False}
    statuses: list[int] = []

    async def call() -> None:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if interleave:
                await asyncio.sleep(0)
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return first

        async def send(message: Any) -> None:
            if interleave:
                await asyncio.sleep(0)
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(dict(template), receive, send)  # type: ignore[arg-type]
        if statuses.pop() != 200:
            sys.exit(f"route_cost: {path}?{query.decode()} did not answer 200")

    return call


async def _started(app: Litestar) -> asyncio.Queue[dict[str, Any]]:
    """Run the app's lifespan start-up; the returned queue ends it when given a shutdown."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started = asyncio.Event()

    async def send(message: Any) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()
        elif message["type"].endswith(".failed"):
            sys.exit(f"route_cost: lifespan failed: {message}")

    task = asyncio.create_task(app({"type": "lifespan"}, inbox.get, send))  # type: ignore[arg-type]
    inbox.put_nowait({"type": "lifespan.startup"})
    await started.wait()
    service: ServiceState = app.state.service
    while not service.ready:  # the model loads in a thread after start-up
        if service.reason not in ("loading", None):
            sys.exit(f"route_cost: the model was refused: {service.reason}")
        await asyncio.sleep(0.01)
    app.state.lifespan_task = task
    return inbox


async def _cpu_per_request(call: Call, requests: int) -> float:
    started = time.thread_time()
    for _ in range(requests):
        await call()
    return (time.thread_time() - started) / requests


async def _costs(calls: list[Call], rounds: int, requests: int) -> list[float]:
    """Median CPU seconds per request of each call, the calls alternating within each round."""
    samples: list[list[float]] = [[] for _ in calls]
    for round_ in range(rounds):
        # Rotate the order so no route always runs right after the same other one.
        order = [(round_ + i) % len(calls) for i in range(len(calls))]
        for index in order:
            samples[index].append(await _cpu_per_request(calls[index], requests))
    return [statistics.median(s) for s in samples]


async def _profile(call: Call, requests: int) -> None:
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(requests):
        await call()
    profile.disable()
    print(f"cProfile, /v1/predict, {requests:,} requests (tottime and cumtime per call):")
    pstats.Stats(profile).sort_stats("tottime").print_stats(25)


def _full_collection() -> float:
    """CPU seconds of one full (generation 2) collection: the median of 7."""
    times = []
    for _ in range(7):
        began = time.thread_time()
        gc.collect()
        times.append(time.thread_time() - began)
    return statistics.median(times)


async def _gc_pauses(call: Call, requests: int, concurrency: int) -> None:
    """Time every collection over ``requests`` calls, ``concurrency`` at a time; then a full one."""
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    began = 0.0

    def timer(phase: str, info: dict[str, int]) -> None:
        nonlocal began
        if phase == "start":
            began = time.perf_counter()
        else:
            pauses[info["generation"]].append(time.perf_counter() - began)

    async def client() -> None:
        for _ in range(requests // concurrency):
            await call()

    gc.callbacks.append(timer)
    try:
        await asyncio.gather(*(client() for _ in range(concurrency)))
    finally:
        gc.callbacks.remove(timer)
    print(f"garbage collections over {requests:,} /v1/predict requests, {concurrency} in flight:")
    print("| generation | collections | median ms | max ms |")
    print("|---:|---:|---:|---:|")
    for generation, times in pauses.items():
        median = f"{statistics.median(times) * 1e3:.3f}" if times else ""
        longest = f"{max(times) * 1e3:.3f}" if times else ""
        print(f"| {generation} | {len(times):,} | {median} | {longest} |")
    # What the start-up freeze (app.py) saves: a full collection of this heap as served, then
    # of the same heap with the frozen objects given back to the collector.
    frozen = gc.get_freeze_count()
    served = _full_collection()
    walked = len(gc.get_objects())
    gc.unfreeze()
    unfrozen = _full_collection()
    everything = len(gc.get_objects())
    gc.freeze()
    print(
        f"a full collection, CPU: {served * 1e3:.2f} ms as served ({walked:,} objects walked,"
        f" {frozen:,} frozen); {unfrozen * 1e3:.1f} ms unfrozen ({everything:,} walked)"
    )


async def _main(args: argparse.Namespace) -> None:
    app = app_with_floor()
    inbox = await _started(app)
    calls = [_request(app, path, query) for _, path, query in ROUTES]
    for call in calls:  # warm every path (first-call caches, the probability buckets)
        for _ in range(200):
            await call()
    costs = await _costs(calls, args.rounds, args.requests)
    floor = costs[0]
    print(
        f"CPU per request in-process, median of {args.rounds} rounds"
        f" x {args.requests:,} requests (python {sys.version.split()[0]}):"
    )
    print("| route | us/request | vs POST floor |")
    print("|---|---:|---:|")
    for (label, _, _), cost in zip(ROUTES, costs, strict=True):
        print(f"| {label} | {cost * 1e6:.1f} | {(cost - floor) * 1e6:+.1f} us |")
    if args.profile:
        await _profile(calls[1], args.requests * 5)
    if args.gc:
        predict = _request(app, "/v1/predict", b"", interleave=True)
        await _gc_pauses(predict, args.gc, args.concurrency)
    inbox.put_nowait({"type": "lifespan.shutdown"})
    await app.state.lifespan_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=15, help="rounds over all routes")
    parser.add_argument("--requests", type=int, default=2000, help="requests per route and round")
    parser.add_argument("--profile", action="store_true", help="cProfile /v1/predict")
    parser.add_argument("--gc", type=int, default=0, metavar="N", help="time GC over N requests")
    parser.add_argument(
        "--concurrency", type=int, default=16, help="requests in flight during --gc (as wrk's)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = fixture_onnx_bytes(version="bench")
        model = Path(tmp) / "model.onnx"
        model.write_bytes(data)
        os.environ.update(
            MODEL_URI=model.as_uri(),
            MODEL_SHA256=hashlib.sha256(data).hexdigest(),
            MODEL_VERSION="bench",
            CHURN_API_LOG_LEVEL="WARNING",  # as in http_bench.py: the request log line is INFO
        )
        asyncio.run(_main(args))


if __name__ == "__main__":
    main()
