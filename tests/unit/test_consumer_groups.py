"""Consumer groups are declared once, in `caf_runtime.topology.CONSUMER_GROUPS`: every group a
service subscribes under is declared there (and nothing else), and the ACLs let each group's
principal, the lag exporter and the operator use it."""

from __future__ import annotations

import contextlib
import importlib
from typing import Any

import pytest
from faststream import FastStream

import caf_runtime.dynamo
from caf_runtime.topology import CONSUMER_GROUPS, ROLES, ConsumerGroup, Role
from devstack.access import SERVICE_PRINCIPALS

pytestmark = pytest.mark.unit

SERVICES = {
    name: principal for name, principal in SERVICE_PRINCIPALS.items() if name != "lag_exporter"
}


@pytest.fixture
def unopened_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The apps are built, never started: their tables get no DynamoDB client (one built and
    never opened would be left to the garbage collector, unawaited)."""
    monkeypatch.setattr(
        caf_runtime.dynamo, "dynamodb_client", lambda _settings: contextlib.nullcontext()
    )


def subscriptions(app: FastStream) -> set[tuple[str, str]]:
    """(group, topic) of every subscriber of the app's broker."""
    assert app.broker is not None
    found: set[tuple[str, str]] = set()
    for subscriber in app.broker.subscribers:
        group: Any = getattr(subscriber, "group_id", None)
        found.update((str(group), topic.name) for topic in getattr(subscriber, "topics", ()))
    return found


def declared(principal: str) -> set[tuple[str, str]]:
    return {
        (group.name, topic)
        for group in CONSUMER_GROUPS
        if group.principal == principal
        for topic in group.topics
    }


@pytest.mark.usefixtures("unopened_tables")
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_service_subscribes_under_exactly_the_groups_declared_for_it(service: str) -> None:
    app = importlib.import_module(f"services.{service}.app").create_app()
    found = subscriptions(app)
    assert found, f"{service} subscribes to nothing: the test would prove nothing"
    assert found == declared(SERVICES[service])


def test_no_group_is_declared_twice_nor_for_a_principal_without_a_service() -> None:
    names = [group.name for group in CONSUMER_GROUPS]
    assert len(names) == len(set(names))
    assert {group.principal for group in CONSUMER_GROUPS} == set(SERVICES.values())


def role(principal: str) -> Role:
    (found,) = (role for role in ROLES if role.principal == principal)
    return found


def allows(role: Role, group: ConsumerGroup) -> bool:
    """The role may consume in the group: a group prefix of it covers the name, and it reads
    every topic of the group."""
    return any(group.name.startswith(prefix) for prefix in role.groups) and set(
        group.topics
    ) <= set(role.reads)


@pytest.mark.parametrize("group", CONSUMER_GROUPS, ids=lambda group: group.name)
def test_the_acls_let_a_groups_principal_the_lag_exporter_and_the_operator_use_it(
    group: ConsumerGroup,
) -> None:
    assert allows(role(group.principal), group)
    assert allows(role("lag-exporter"), group)
    assert allows(role("operator"), group)


def test_a_group_outside_its_principals_prefix_is_refused() -> None:
    """The check above can fail: the poster's prefix does not cover the notifier's group."""
    stray = ConsumerGroup("caf-notifier", ("caf.events.v1",), "poster")
    assert not allows(role("poster"), stray)
