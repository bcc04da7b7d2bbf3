"""Kafka ACLs generated from the declarative topology (`caf_runtime.topology.ROLES`).

Each principal gets exactly what its role needs: READ (with DESCRIBE) on the topics it reads,
WRITE (with DESCRIBE) on the topics it writes, DESCRIBE on the topics it only measures, and READ
on consumer groups named with its prefixes. The broker refuses everything else
(`allow.everyone.if.no.acl.found=false`): the notifier cannot write validated grants, a portal
cannot read the outcome stream. Topic ACLs are literal deployed names (`CAF_TOPIC_PREFIX` +
contract name), so environments sharing a cluster do not share permissions.

`acl_table` is what `cafctl acls` prints for a real cluster; `apply_acls` creates them with
confluent-kafka's admin client (aiokafka has no ACL API).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, cast

from caf_runtime.config import ServiceSettings
from caf_runtime.topology import ROLES, Role

Resource = Literal["TOPIC", "GROUP", "CLUSTER"]
Pattern = Literal["LITERAL", "PREFIXED"]
Operation = Literal["READ", "WRITE", "DESCRIBE"]


@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW binding: principal may do operation on the resource (from any host)."""

    principal: str
    resource: Resource
    name: str
    pattern: Pattern
    operation: Operation

    def row(self) -> dict[str, str]:
        return {
            "principal": self.principal,
            "resource": self.resource,
            "name": self.name,
            "pattern": self.pattern,
            "operation": self.operation,
        }


def role_acls(role: Role, topic_prefix: str = "") -> set[Acl]:
    """The ACLs of one role in an environment whose topics carry `topic_prefix`."""
    principal = f"User:{role.principal}"
    acls: set[Acl] = set()
    reading: tuple[Operation, ...] = ("READ", "DESCRIBE")
    writing: tuple[Operation, ...] = ("WRITE", "DESCRIBE")
    for topic in role.reads:
        for operation in reading:
            acls.add(Acl(principal, "TOPIC", topic_prefix + topic, "LITERAL", operation))
    for topic in role.writes:
        for operation in writing:
            acls.add(Acl(principal, "TOPIC", topic_prefix + topic, "LITERAL", operation))
    for topic in role.describe:
        acls.add(Acl(principal, "TOPIC", topic_prefix + topic, "LITERAL", "DESCRIBE"))
    for group in role.groups:
        acls.add(Acl(principal, "GROUP", group, "PREFIXED", "READ"))
        acls.add(Acl(principal, "GROUP", group, "PREFIXED", "DESCRIBE"))
    return acls


def all_acls(topic_prefix: str = "", roles: Iterable[Role] = ROLES) -> list[Acl]:
    """Every ACL of every role, sorted (the same input always gives the same list)."""
    return sorted({acl for role in roles for acl in role_acls(role, topic_prefix)})


def acl_table(acls: Iterable[Acl]) -> list[dict[str, str]]:
    return [acl.row() for acl in acls]


def kafka_admin_config(settings: ServiceSettings) -> dict[str, str]:
    """confluent-kafka configuration for the connection `settings` describe."""
    config = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "security.protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol.startswith("SASL"):
        password = settings.kafka_sasl_password
        config |= {
            "sasl.mechanisms": settings.kafka_sasl_mechanism,
            "sasl.username": settings.kafka_sasl_username or "",
            "sasl.password": password.get_secret_value() if password else "",
        }
    if settings.kafka_ssl_cafile:
        config["ssl.ca.location"] = settings.kafka_ssl_cafile
    return config


def apply_acls(config: Mapping[str, str], acls: Iterable[Acl], timeout_s: float = 30.0) -> int:
    """Create `acls` on the cluster (creating an existing binding is a no-op); their count."""
    from confluent_kafka.admin import (  # noqa: PLC0415 - only the provisioning step needs it
        AclBinding,
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
    )

    bindings = [
        AclBinding(
            ResourceType[acl.resource],
            acl.name,
            ResourcePatternType[acl.pattern],
            acl.principal,
            "*",
            AclOperation[acl.operation],
            AclPermissionType.ALLOW,
        )
        for acl in acls
    ]
    if not bindings:
        return 0
    admin = AdminClient(dict(config))
    for future in admin.create_acls(bindings, request_timeout=timeout_s).values():
        future.result(timeout=timeout_s)
    # The controller has them; the broker's authorizer learns them from the metadata log a
    # moment later. Return only once the broker lists them all, so what follows is authorized.
    anything = cast("str", None)  # the filter's documented wildcard; annotated as str
    everything = AclBindingFilter(
        ResourceType.ANY,
        anything,
        ResourcePatternType.ANY,
        anything,
        anything,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    deadline = time.monotonic() + timeout_s
    while True:
        listed = set(admin.describe_acls(everything, request_timeout=timeout_s).result())
        if set(bindings) <= listed:
            return len(bindings)
        if time.monotonic() > deadline:
            msg = f"{len(set(bindings) - listed)} ACLs not visible on the broker after creation"
            raise TimeoutError(msg)
        time.sleep(0.2)
