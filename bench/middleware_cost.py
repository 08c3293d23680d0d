"""What the operations layer costs on the hot path: list and find with and without it.

`full`: Conveyor as `conveyor serve` runs it: the access-log/metrics
middleware (JSON lines at info, to a file), per-key rate limiting (memory
buckets, a limit never reached). `bare`: the same app with that middleware
removed and rate limiting off. Each runs as a uvicorn subprocess on
127.0.0.1; one client alternates between them, round after round, and the
median per request is compared.

    python bench/middleware_cost.py --runs 20000
"""

from __future__ import annotations

import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from common import BENCH_DIR, arguments, free_port, print_machine, seed_sqlite, stop_process

ROUNDS = 15
REQUESTS = 200


def serve(variant: str) -> None:
    """Child process: build the app for `variant` and serve it."""
    import uvicorn

    from conveyor.api.accesslog import AccessLogMiddleware
    from conveyor.app import create_app
    from conveyor.config import Settings
    from conveyor.observability.logs import JsonFormatter
    from conveyor.store.database import Database

    settings = Settings.from_env()
    app = create_app(settings, Database(settings.database_url))
    if variant == "bare":
        app.user_middleware = [m for m in app.user_middleware if m.cls is not AccessLogMiddleware]
        app.state.ctx.rate_limiter = None
    else:
        handler = logging.FileHandler(os.environ["ACCESS_LOG_FILE"])
        handler.setFormatter(JsonFormatter())
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.INFO)
    uvicorn.run(app, host="127.0.0.1", port=settings.port, log_level="warning", access_log=False)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        serve(sys.argv[2])
        return
    args = arguments(__doc__.split("\n\n")[0], rounds={"type": int, "default": ROUNDS})
    print_machine()
    db = seed_sqlite(args.runs)
    home = BENCH_DIR / ".data" / "middleware-home"
    home.mkdir(parents=True, exist_ok=True)
    servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    for variant in ("bare", "full"):
        port = free_port()
        env = {
            **os.environ,
            "CONVEYOR_HOME": str(home),
            "CONVEYOR_DATABASE_URL": db.url,
            "CONVEYOR_EMBEDDED_WORKERS": "0",
            "CONVEYOR_PORT": str(port),
            "CONVEYOR_RATE_LIMIT_RATE": "1000000",
            "CONVEYOR_RATE_LIMIT_BURST": "1000000",
            "ACCESS_LOG_FILE": str(home / "access.log"),
        }
        process = subprocess.Popen([sys.executable, __file__, "--serve", variant], env=env)
        servers[variant] = (process, f"http://127.0.0.1:{port}")
    try:
        for _process, url in servers.values():
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"{url}/healthz", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        headers = {"X-FilesAPI-Key": db.api_key}
        paths = {
            "list": f"/api/rest/v1/automation_runs?automation_id={db.automation_id}&per_page=100",
            "find": "/api/rest/v1/automation_runs/1",
        }
        clients = {
            v: httpx.Client(base_url=url, headers=headers) for v, (_p, url) in servers.items()
        }
        samples: dict[tuple[str, str], list[float]] = {}
        for kind, path in paths.items():
            for client in clients.values():
                for _ in range(20):
                    client.get(path).raise_for_status()  # warm-up
            for round_number in range(args.rounds):
                # Alternate which server goes first, so neither always follows the other.
                order = list(clients.items())
                for variant, client in order if round_number % 2 else reversed(order):
                    started = time.perf_counter()
                    for _ in range(REQUESTS):
                        client.get(path)
                    per = (time.perf_counter() - started) / REQUESTS
                    samples.setdefault((kind, variant), []).append(per)
        for kind in paths:
            bare = statistics.median(samples[(kind, "bare")])
            full = statistics.median(samples[(kind, "full")])
            print(
                f"{kind}: bare {bare * 1e6:7.0f} us/request, full {full * 1e6:7.0f} us/request, "
                f"full/bare {full / bare:.3f} (+{(full - bare) * 1e6:.0f} us)"
            )
        lines = len((home / "access.log").read_bytes().splitlines())
        print(f"access-log lines written by the full server: {lines:,}")
    finally:
        for process, _url in servers.values():
            stop_process(process)
        Path(home / "access.log").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
