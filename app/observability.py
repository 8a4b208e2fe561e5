"""What operators see: a request id on every request, log line and audit event; logs as text
or JSON lines; an access log; and Prometheus metrics, one view over every worker.

Metrics are counted in plain dicts on the request path (a dict increment, not a metrics
library call) and pushed into prometheus-client's multiprocess values once a second by each
worker, so a scrape is at most a second behind and a request pays almost nothing.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import contextvars
import itertools
import logging
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any, ClassVar

from sanic import Request, Sanic
from sanic.response import BaseHTTPResponse

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_GIVEN_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")  # what a proxy's id looks like
FLUSH_EVERY = 1.0
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"

access = logging.getLogger("app.access")


# New ids: this process's random half, then a counter; unique without a syscall per request
# (an id names a request, it guards nothing).
_PROCESS_PART = uuid.uuid4().hex[:16]
_sequence = itertools.count(1)


def request_id_for(given: str | None) -> str:
    """The caller's `X-Request-ID` when it is a plausible id, else a new one (32 hex digits)."""
    if given and _GIVEN_ID.fullmatch(given):
        return given
    return f"{_PROCESS_PART}{next(_sequence):016x}"


# -- logs ------------------------------------------------------------------------------------


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every log record (`-` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get() or "-"
        return True


def configure_logging(log_format: str) -> None:
    """One handler for the service's and Sanic's loggers: text, or one JSON object a line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    for name in ("app", "sanic.root", "sanic.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
    logging.getLogger("app").setLevel(logging.INFO)


# -- metrics ---------------------------------------------------------------------------------

# name -> (help, label names); every one a counter
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "logins": ("Password logins, by outcome", ("outcome",)),
    "refreshes": ("Refresh-token exchanges, by outcome", ("outcome",)),
    "revocations": ("Revocations published to the workers, by what they revoke", ("kind",)),
    "revocation_publishes": (
        "Revocation publishes, by outcome: every worker acknowledged, not all, or failed",
        ("outcome",),
    ),
    "reuse_detected": ("Refresh-token reuse detected (a session revoked)", ()),
    "bearer_cache": ("Bearer checks answered from the verified-token cache, or not", ("result",)),
    "revocation_copy_fallbacks": (
        "Bearer checks that asked Redis (copy not trusted, or not sure: a revoked token)",
        (),
    ),
    "dependency_errors": ("Requests that met an unavailable dependency", ("dependency",)),
    "purges": ("Purges of ended sessions and old audit events run", ()),
}


class Metrics:
    """This process's counts since the last flush, pushed into prometheus-client by `flush`."""

    def __init__(self) -> None:
        self._counts: defaultdict[tuple[str, tuple[str, ...]], int] = defaultdict(int)
        # (route, method, status) -> [a count per bucket and one for +Inf, then the sum]
        self._latency: dict[tuple[str, str, int], list[float]] = {}
        self._prometheus: dict[str, Any] | None = None

    def count(self, name: str, *labels: str, by: int = 1) -> None:
        self._counts[(name, labels)] += by

    def counter(self, name: str, *labels: str) -> Callable[[], None]:
        """A counter of one label set for the hottest paths: one dict increment a call."""
        key, counts = (name, labels), self._counts  # the one dict, cleared by each flush

        def add() -> None:
            counts[key] += 1

        return add

    def time(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        cells = self._latency.get(key)
        if cells is None:
            cells = self._latency[key] = [0.0] * (len(LATENCY_BUCKETS) + 2)
        cells[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        cells[-1] += seconds

    def flush(self) -> None:
        if not self._counts and not self._latency:
            return
        metrics = self._objects()
        counts = dict(self._counts)
        self._counts.clear()
        latency, self._latency = self._latency, {}
        for (name, labels), value in counts.items():
            counter = metrics[name]
            (counter.labels(*labels) if labels else counter).inc(value)
        for (route, method, status), cells in latency.items():
            child = metrics["latency"].labels(route, method, str(status))
            # In bulk, what `observe` does one value at a time: each bucket gets its own
            # count (the exposition accumulates them), and the sum.
            for index, hits in enumerate(cells[:-1]):
                if hits:
                    child._buckets[index].inc(hits)
            child._sum.inc(cells[-1])

    def _objects(self) -> dict[str, Any]:
        if self._prometheus is None:
            from prometheus_client import Counter, Histogram

            objects: dict[str, Any] = {
                name: Counter(f"jwt_refresh_{name}", text, labels)
                for name, (text, labels) in COUNTERS.items()
            }
            objects["latency"] = Histogram(
                "jwt_refresh_request_duration_seconds",
                "Time to answer a request, by route",
                ("route", "method", "status"),
                buckets=LATENCY_BUCKETS,
            )
            self._prometheus = objects
        return self._prometheus

    async def flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            with contextlib.suppress(OSError):  # the files' directory gone: a stopping server
                self.flush()


METRICS = Metrics()


def count(name: str, *labels: str, by: int = 1) -> None:
    """Count `by` events of metric `name` (see COUNTERS) in this process."""
    METRICS.count(name, *labels, by=by)


def exposition() -> tuple[bytes, str]:
    """Every worker's metrics as one Prometheus text exposition (and its content type)."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    METRICS.flush()
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


_created_dir: str | None = None  # the directory this process made (and so removes)


def prepare_metrics_dir() -> None:
    """Where the workers' metrics files go (PROMETHEUS_MULTIPROC_DIR, else a new temporary
    directory): set before prometheus-client is imported, in the main process, so that every
    worker (a spawned process) inherits it."""
    global _created_dir
    if not os.environ.get(MULTIPROC_DIR):
        _created_dir = os.environ[MULTIPROC_DIR] = tempfile.mkdtemp(prefix="jwt-refresh-api-")


# -- wiring ----------------------------------------------------------------------------------


class ApiRequest(Request):
    """Sanic's request, timed and identified from its first moment, and observed as it is
    answered (`respond`, the one step every answer goes through, errors included).

    Neither middleware nor signals: each middleware costs Sanic two signal dispatches per
    request, and a signal with a handler costs more than the whole of this class.
    """

    __slots__ = ("observed", "request_id", "started")
    access_log: ClassVar[bool] = True  # ACCESS_LOG, set by `setup_observability`

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started = time.perf_counter()
        self.observed = False
        self.request_id = request_id_for(self.headers.get("x-request-id"))
        REQUEST_ID.set(self.request_id)  # the task serving this request: its log lines

    def respond(self, response: Any = None, **kwargs: Any) -> Any:
        # Not a coroutine of its own: Sanic's, returned for the caller to await. Called again
        # for an error met while answering: that answer gets its id too, counted once.
        if response is not None:
            response.headers["X-Request-ID"] = self.request_id
            if not self.observed:
                self.observed = True
                _answered(self, response)
        return super().respond(response, **kwargs)


# Label values come only from these sets (or "unrouted" / "other"): a client sending odd
# methods to unknown paths can't grow the metrics without bound.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _answered(request: ApiRequest, response: BaseHTTPResponse) -> None:
    seconds = time.perf_counter() - request.started
    route = request.route
    method = request.method
    METRICS.time(
        route.name if route is not None else "unrouted",
        method if method in _METHODS else "other",
        response.status,
        seconds,
    )
    if ApiRequest.access_log:
        access.info(
            "%s %s %s %.1fms",
            request.method,
            request.path,
            response.status,
            seconds * 1000,
            extra={"method": request.method, "path": request.path, "status": response.status},
        )


async def _start_flushing(app: Sanic[Any, Any]) -> None:
    app.ctx.metrics_flusher = asyncio.get_running_loop().create_task(METRICS.flush_forever())


async def _stop_flushing(app: Sanic[Any, Any]) -> None:
    app.ctx.metrics_flusher.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await app.ctx.metrics_flusher
    # The main process may already have removed the directory it made (a server stopped
    # moments after it started): the last counts of a stopping worker go with it.
    with contextlib.suppress(OSError):
        METRICS.flush()
    with contextlib.suppress(Exception):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


async def _clean_metrics_dir(app: Sanic[Any, Any]) -> None:
    """Main process, before the workers: no counts of an earlier run (or a dead worker)."""
    directory = os.environ.get(MULTIPROC_DIR)
    entries: list[str] = []
    if directory:
        with contextlib.suppress(OSError):
            entries = os.listdir(directory)  # noqa: ASYNC240 - the main process, before serving
        for entry in entries:
            if entry.endswith(".db"):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(directory, entry))


async def _remove_metrics_dir(app: Sanic[Any, Any]) -> None:
    if _created_dir is not None and os.environ.get(MULTIPROC_DIR) == _created_dir:
        shutil.rmtree(_created_dir, ignore_errors=True)


def setup_observability(app: Sanic[Any, Any]) -> None:
    """Request ids, the access log, metrics: the first and the last step of every request,
    so that everything between runs inside the request's id."""
    configure_logging(app.ctx.settings.log_format)
    prepare_metrics_dir()
    app.request_class = ApiRequest
    ApiRequest.access_log = app.ctx.settings.access_log
    app.before_server_start(_start_flushing)
    app.after_server_stop(_stop_flushing)
    app.main_process_start(_clean_metrics_dir)
    app.main_process_stop(_remove_metrics_dir)
