"""A minimal HTTP endpoint for liveness and readiness probes and the metrics page.

`GET /healthz` answers 200 while every liveness check passes (503 with the failing ones: the
process is stuck and should be restarted); `GET /readyz` answers 200 only when every readiness
check passes (503 with the failing checks otherwise). It needs no web framework: the
probes are the only thing served.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping

from caf_runtime.metrics import exposition

ReadinessCheck = Callable[[], Awaitable[bool]]
LivenessCheck = Callable[[], bool]

_REASONS = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}


class HealthServer:
    """Serves `/healthz` and `/readyz` on 127.0.0.1 or the given host."""

    def __init__(
        self,
        checks: Mapping[str, ReadinessCheck],
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        on_scrape: Callable[[], object] | None = None,
        liveness: Mapping[str, LivenessCheck] | None = None,
    ) -> None:
        self._checks = dict(checks)
        self._liveness = dict(liveness or {})
        self._on_scrape = on_scrape
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        if self._server is None:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, self._port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def readiness(self) -> dict[str, bool]:
        results: dict[str, bool] = {}
        for name, check in self._checks.items():
            try:
                results[name] = await asyncio.wait_for(check(), timeout=2.0)
            except Exception:  # noqa: BLE001 - a failing check means "not ready", whatever it raised
                results[name] = False
        return results

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), timeout=5.0)
            parts = request_line.decode(errors="replace").split()
            path = parts[1] if len(parts) >= 2 else ""
            body: dict[str, object]
            if path == "/metrics":
                if self._on_scrape is not None:
                    self._on_scrape()
                page, content_type = exposition()
                writer.write(
                    f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
                    f"Content-Length: {len(page)}\r\nConnection: close\r\n\r\n".encode()
                    + page
                )
                await writer.drain()
                return
            if path == "/healthz":
                alive = {name: check() for name, check in self._liveness.items()}
                if all(alive.values()):
                    status, body = 200, {"status": "alive"}
                else:
                    status, body = 503, {"status": "stuck", "checks": alive}
            elif path == "/readyz":
                checks = await self.readiness()
                status = 200 if all(checks.values()) else 503
                body = {"status": "ready" if status == 200 else "not ready", "checks": checks}
            else:
                status, body = 404, {"status": "not found"}
            payload = json.dumps(body).encode()
            writer.write(
                f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
