"""The one HTTP surface of a process: liveness and readiness probes and the metrics page.

`GET /healthz` answers 200 while every liveness check passes (503 with the failing ones: the
process is stuck and should be restarted); `GET /readyz` answers 200 only when every readiness
check passes (503 with the failing checks otherwise); `GET /metrics` serves a Prometheus
registry (the process's default one unless told another). Every service serves it
(`caf_runtime.service`), and so does the lag exporter (`cafctl.lag_exporter`), with its own
registry and checks. The read side's API serves its own (FastAPI) besides.

It is an `aiohttp.web` application (aiohttp comes with aiobotocore already), not a hand-written
HTTP parser. Each response closes its connection: probes and scrapers make one request per
connection, and a reader may read the answer to its end.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry

from caf_runtime.metrics import exposition

ReadinessCheck = Callable[[], Awaitable[bool]]
LivenessCheck = Callable[[], bool]

CHECK_TIMEOUT_S = 2.0  # a readiness check that takes longer fails
SHUTDOWN_TIMEOUT_S = 3.0  # a request still being answered at shutdown gets this long


class HealthServer:
    """Serves `/healthz`, `/readyz` and `/metrics` on 127.0.0.1 or the given host.

    `on_scrape` runs before each metrics page (to bring gauges up to date); `registry` is the
    registry the page shows."""

    def __init__(
        self,
        checks: Mapping[str, ReadinessCheck],
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        on_scrape: Callable[[], object] | None = None,
        liveness: Mapping[str, LivenessCheck] | None = None,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self._checks = dict(checks)
        self._liveness = dict(liveness or {})
        self._on_scrape = on_scrape
        self._registry = registry
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        if self._runner is None or not self._runner.addresses:
            return self._port
        return int(self._runner.addresses[0][1])

    def app(self) -> web.Application:
        """The web application: the three paths, and JSON for every error."""
        app = web.Application(middlewares=[_one_request_per_connection])
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self) -> None:
        runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def readiness(self) -> dict[str, bool]:
        """Each readiness check's answer: one that raises or takes longer than
        `CHECK_TIMEOUT_S` is False."""
        results: dict[str, bool] = {}
        for name, check in self._checks.items():
            try:
                results[name] = await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - a failing check means "not ready", whatever it raised
                results[name] = False
        return results

    async def _healthz(self, _: web.Request) -> web.Response:
        alive = {name: check() for name, check in self._liveness.items()}
        if all(alive.values()):
            return _json(200, {"status": "alive"})
        return _json(503, {"status": "stuck", "checks": alive})

    async def _readyz(self, _: web.Request) -> web.Response:
        checks = await self.readiness()
        ready = all(checks.values())
        return _json(
            200 if ready else 503,
            {"status": "ready" if ready else "not ready", "checks": checks},
        )

    async def _metrics(self, _: web.Request) -> web.Response:
        if self._on_scrape is not None:
            self._on_scrape()
        page, content_type = exposition(self._registry)
        return web.Response(body=page, headers={"Content-Type": content_type})


def _json(status: int, body: Mapping[str, object]) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(body).encode(), content_type="application/json"
    )


@web.middleware
async def _one_request_per_connection(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Closes the connection after the response (`Connection: close`); an unknown path or
    method answers JSON too (`{"status": "not found"}`)."""
    try:
        response = await handler(request)
    except web.HTTPException as error:
        response = _json(error.status, {"status": error.reason.lower()})
    response.force_close()
    return response
