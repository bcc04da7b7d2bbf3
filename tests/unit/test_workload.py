"""The fault-run and benchmark workload is realistic and keyed as the contract says."""

from __future__ import annotations

import json

import pytest

from devstack.figures import percentiles
from devstack.workload import Workload
from schemas.codec import decode_inbound
from schemas.errors import ContractError
from schemas.inbound import Submission, TpaDecision, TpaRequest

pytestmark = pytest.mark.unit


def decoded(workload: Workload) -> list[object]:
    messages: list[object] = []
    for message in workload:
        raw = message.body if isinstance(message.body, bytes) else json.dumps(message.body)
        try:
            messages.append(decode_inbound(raw if isinstance(raw, bytes) else raw.encode()))
        except ContractError:
            messages.append(None)
    return messages


def test_the_workload_has_at_least_the_asked_size_and_every_kind_of_the_mix() -> None:
    workload = Workload(3000, seed=1)
    assert len(workload.messages) >= 3000
    kinds = workload.counts()
    assert set(kinds) >= {"form", "tpa_request", "tpa_approve", "tpa_decline", "withdrawal"}
    assert {"revocation", "resent", "malformed", "form_rejected"} <= set(kinds)
    assert 0.005 < kinds["malformed"] / len(workload.messages) < 0.03


def test_only_the_malformed_messages_fail_the_contract() -> None:
    workload = Workload(1500, seed=2)
    for message, model in zip(workload, decoded(workload), strict=True):
        assert (model is None) == (message.kind == "malformed")


def test_tax_pro_account_messages_are_keyed_by_request_id_and_the_rest_by_message_id() -> None:
    workload = Workload(1500, seed=3)
    for message, model in zip(workload, decoded(workload), strict=True):
        if isinstance(model, TpaRequest | TpaDecision):
            assert message.key == model.request_id
        elif isinstance(model, Submission):
            assert message.key == model.message_id


def test_every_decision_follows_its_request_and_no_registered_caf_number_nears_va_07() -> None:
    workload = Workload(3000, seed=4)
    models = decoded(workload)
    requested: set[str] = set()
    per_caf: dict[str, set[str]] = {}
    for model in models:
        if isinstance(model, TpaRequest):
            requested.add(model.request_id)
        if isinstance(model, TpaDecision):
            assert model.request_id in requested
        if isinstance(model, Submission):
            for rep in model.representatives:
                if rep.caf_number:
                    per_caf.setdefault(rep.caf_number, set()).add(str(model.taxpayer.tin))
    assert max(len(taxpayers) for taxpayers in per_caf.values()) < 25


def test_the_same_seed_gives_the_same_mix() -> None:
    assert Workload(500, seed=9).counts() == Workload(500, seed=9).counts()


def test_percentiles_of_latencies_are_ordered() -> None:
    figures = percentiles([float(n) for n in range(1, 101)])
    assert figures["p50"] <= figures["p95"] <= figures["p99"] <= 100
    assert figures["p99"] >= 99
