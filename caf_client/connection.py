"""How a client reaches Kafka: from a Java-style client properties file or plain options.

The local stack writes one properties file per principal
(`.devstack/clients/<principal>.properties`, the format every Kafka client understands);
`KafkaConnection.from_properties` turns one into aiokafka's options, so Python and Java clients
share the same file. `ClientScope` is an aiokafka client's lifetime as `async with`.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

__all__ = [
    "ClientScope",
    "KafkaConnection",
]

_JAAS_OPTION = re.compile(r'(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class KafkaConnection:
    """Bootstrap servers and, for a secured cluster, the SASL credentials and the CA to trust."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None

    @classmethod
    def from_properties(cls, path: str | Path) -> KafkaConnection:
        """Read `bootstrap.servers`, `security.protocol`, `sasl.mechanism`, `sasl.jaas.config`
        (username and password) and `ssl.truststore.location` (PEM) from a properties file."""
        properties = _read_properties(Path(path))
        jaas = dict(_JAAS_OPTION.findall(properties.get("sasl.jaas.config", "")))
        truststore_type = properties.get("ssl.truststore.type", "PEM").upper()
        if "ssl.truststore.location" in properties and truststore_type != "PEM":
            msg = f"{path}: only PEM truststores are supported (ssl.truststore.type=PEM)"
            raise ValueError(msg)
        return cls(
            bootstrap_servers=properties["bootstrap.servers"],
            security_protocol=properties.get("security.protocol", "PLAINTEXT"),
            sasl_mechanism=properties.get("sasl.mechanism"),
            username=jaas.get("username"),
            password=jaas.get("password"),
            ca_file=properties.get("ssl.truststore.location"),
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.security_protocol.endswith("SSL"):
            return None
        return ssl.create_default_context(cafile=self.ca_file)

    def options(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        context = self.ssl_context()
        if context is not None:
            options["ssl_context"] = context
        if self.security_protocol.startswith("SASL"):
            options |= {
                "sasl_mechanism": self.sasl_mechanism or "SCRAM-SHA-512",
                "sasl_plain_username": self.username,
                "sasl_plain_password": self.password,
            }
        return options


class _Startable(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


_Client = TypeVar("_Client", bound=_Startable)


class ClientScope(Generic[_Client]):
    """Holds one aiokafka producer or consumer, started on entering `async with` and stopped on
    leaving it."""

    def __init__(self, client: _Client) -> None:
        self._client = client

    async def __aenter__(self) -> Self:
        await self._client.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._client.stop()


def _read_properties(path: Path) -> dict[str, str]:
    properties: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        key, _, value = line.partition("=")
        properties[key.strip()] = value.strip()
    return properties
