"""What every Conveyor server process sets up before it works: logs, run events, metrics.

`conveyor serve` calls `setup(settings)`; `conveyor worker` calls it with
`worker=True`, which also starts, when CONVEYOR_WORKER_METRICS_PORT is set, a
/metrics listener of its own (a worker serves no API to carry one). The worker's
retention pruning is the engine's (conveyor.engine.service.run_worker_process).
"""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

from conveyor.config import Settings
from conveyor.observability import logs, runevents

log = logging.getLogger("conveyor")


def setup(settings: Settings, *, worker: bool = False) -> None:
    logs.configure(settings.log_level)
    runevents.install()
    if worker and settings.metrics and settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr=settings.host)
        log.info(
            "worker metrics on http://%s:%d/metrics", settings.host, settings.worker_metrics_port
        )
