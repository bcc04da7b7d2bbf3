"""Authenticated Kafka for the local stack: a local CA and broker certificate, one SCRAM
principal per role, and one client properties file per principal.

Everything lives in the stack folder and is made once:
- `tls/ca.pem` (the CA clients trust), `tls/broker.pem` (the broker's key and certificate,
  PEM, for 127.0.0.1 and localhost), made with the `cryptography` package;
- `secrets/kafka/<principal>` (mode 0600): a random SCRAM-SHA-512 password per principal;
- `clients/<principal>.properties`: what any Kafka client (Java or `caf_client`) needs to connect
  as that principal: `bootstrap.servers`, `security.protocol=SASL_SSL`, `sasl.mechanism`,
  `sasl.jaas.config`, `ssl.truststore.type=PEM`, `ssl.truststore.location`.

`admin` is the broker's own principal and `provisioner` the provisioning step's; both are super
users. Every other principal is a role of `caf_runtime.topology.ROLES` and gets its ACLs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from caf_runtime.topology import ROLES

ADMIN: Final = "admin"
PROVISIONER: Final = "provisioner"
SUPER_USERS: Final = (ADMIN, PROVISIONER)
PRINCIPALS: Final = (*SUPER_USERS, *(role.principal for role in ROLES))
MECHANISM: Final = "SCRAM-SHA-512"
# Which principal each process of the local stack runs as.
SERVICE_PRINCIPALS: Final = {
    "intake": "intake",
    "validator": "validator",
    "caf_poster": "poster",
    "notifier": "notifier",
    "lag_exporter": "lag-exporter",
    "caf_query": "query",
    "monitor": "monitor",
}


@dataclass(frozen=True)
class KafkaAccess:
    """TLS material, SCRAM passwords and client files of one local stack."""

    root: Path

    @property
    def ca_file(self) -> Path:
        return self.root / "tls" / "ca.pem"

    @property
    def broker_pem(self) -> Path:
        return self.root / "tls" / "broker.pem"

    def password(self, principal: str) -> str:
        """The principal's SCRAM password, made at first use (mode 0600)."""
        path = self.root / "secrets" / "kafka" / principal
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(24))
        return path.read_text().strip()

    def ensure_tls(self) -> None:
        """The CA and the broker certificate, unless they exist."""
        if self.ca_file.exists() and self.broker_pem.exists():
            return
        self.ca_file.parent.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CAF local development CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        broker = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=825))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        chain = broker.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(
            serialization.Encoding.PEM
        )
        descriptor = os.open(self.broker_pem, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(private + chain)
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def client_properties(self, principal: str, bootstrap_servers: str) -> str:
        password = self.password(principal)
        return (
            f"bootstrap.servers={bootstrap_servers}\n"
            "security.protocol=SASL_SSL\n"
            f"sasl.mechanism={MECHANISM}\n"
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{principal}" password="{password}";\n'
            "ssl.truststore.type=PEM\n"
            f"ssl.truststore.location={self.ca_file}\n"
        )

    def write_client_files(self, bootstrap_servers: str) -> Path:
        """`clients/<principal>.properties` for every principal (mode 0600); their folder."""
        folder = self.root / "clients"
        folder.mkdir(parents=True, exist_ok=True)
        for principal in PRINCIPALS:
            path = folder / f"{principal}.properties"
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(self.client_properties(principal, bootstrap_servers))
        return folder

    def environment(self, principal: str) -> dict[str, str]:
        """The settings (`caf_runtime.config`) that connect a process as `principal`."""
        return {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": MECHANISM,
            "KAFKA_SASL_USERNAME": principal,
            "KAFKA_SASL_PASSWORD": self.password(principal),
            "KAFKA_SSL_CAFILE": str(self.ca_file),
        }

    def ensure_users(self, admin_config: Mapping[str, str], timeout_s: float = 30.0) -> list[str]:
        """Create the SCRAM credential of every principal the broker does not know yet (a
        stack formatted before a role was added); the principals created."""
        from confluent_kafka.admin import (  # noqa: PLC0415 - only provisioning needs it
            AdminClient,
            ScramCredentialInfo,
            ScramMechanism,
            UserScramCredentialUpsertion,
        )

        admin = AdminClient(dict(admin_config))
        described: Any = admin.describe_user_scram_credentials(list(PRINCIPALS))
        missing = [
            user for user, future in described.items() if not _has_credentials(future, timeout_s)
        ]
        if not missing:
            return []
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
        upserts: list[Any] = [
            UserScramCredentialUpsertion(principal, info, self.password(principal).encode())
            for principal in missing
        ]
        for future in admin.alter_user_scram_credentials(upserts).values():
            future.result(timeout=timeout_s)
        return missing

    def scram_arguments(self) -> list[str]:
        """`kafka-storage format` arguments that create every principal's SCRAM credential."""
        arguments = []
        for principal in PRINCIPALS:
            credential = f"{MECHANISM}=[name={principal},password={self.password(principal)}]"
            arguments += ["--add-scram", credential]
        return arguments


def _has_credentials(future: Any, timeout_s: float) -> bool:
    """Whether the broker holds credentials for a described user (one without any is
    reported as a `ResourceNotFound` error)."""
    from confluent_kafka import KafkaException  # noqa: PLC0415 - only provisioning needs it

    try:
        return bool(future.result(timeout=timeout_s).scram_credential_infos)
    except KafkaException:
        return False
