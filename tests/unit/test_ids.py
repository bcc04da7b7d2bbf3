"""Deterministic identifiers and the taxpayer pseudonym."""

from __future__ import annotations

import secrets

import pytest

from schemas.errors import ContractError
from schemas.ids import (
    RefKeys,
    event_id,
    notification_id,
    ref_version,
    rekeyed,
    submission_grant_id,
    taxpayer_ref,
)

pytestmark = pytest.mark.unit


def test_taxpayer_ref_is_32_hex_characters_and_stable_for_one_key() -> None:
    first = taxpayer_ref("123456789", b"key-one")
    assert first == taxpayer_ref("123456789", b"key-one")
    assert len(first) == 32
    assert int(first, 16) >= 0
    assert "6789" not in first or first != "123456789"


def test_taxpayer_ref_changes_with_the_key_and_the_tin() -> None:
    assert taxpayer_ref("123456789", b"key-one") != taxpayer_ref("123456789", b"key-two")
    assert taxpayer_ref("123456789", b"key-one") != taxpayer_ref("123456788", b"key-one")


@pytest.mark.parametrize("tin", ["123-45-6789", "12345678", "abcdefghi"])
def test_taxpayer_ref_takes_only_a_normalized_tin(tin: str) -> None:
    with pytest.raises(ContractError):
        taxpayer_ref(tin, b"key")


def test_taxpayer_ref_refuses_an_empty_key() -> None:
    with pytest.raises(ContractError):
        taxpayer_ref("123456789", b"")


def test_a_ref_of_key_version_1_is_bare_and_later_versions_are_prefixed() -> None:
    one = RefKeys((secrets.token_bytes(32),))
    two = RefKeys((*one.layers, secrets.token_bytes(32)))
    assert ref_version(one.ref("123456789")) == 1
    assert len(one.ref("123456789")) == 32
    assert two.ref("123456789").startswith("v2.")
    assert ref_version(two.ref("123456789")) == 2
    assert two.refs("123456789") == (one.ref("123456789"), two.ref("123456789"))


def test_a_stored_ref_is_rekeyed_to_the_next_version_with_that_versions_key_alone() -> None:
    """The rotation drill re-keys without a TIN: version 2's ref of a TIN is version 2's layer
    over its version 1 ref."""
    base, layer = secrets.token_bytes(32), secrets.token_bytes(32)
    two = RefKeys((base, layer))
    stored = RefKeys((base,)).ref("987654321")
    assert rekeyed(stored, 2, layer) == two.ref("987654321")
    with pytest.raises(ContractError):
        rekeyed(two.ref("987654321"), 2, layer)  # already version 2


def test_the_message_ref_carries_the_current_version_too() -> None:
    two = RefKeys((secrets.token_bytes(32), secrets.token_bytes(32)))
    assert ref_version(two.message_ref("m-1")) == 2


def test_form_fingerprints_survive_a_rotation() -> None:
    """IN-03 across a rotation: the fingerprint stays keyed with version 1's key."""
    one = RefKeys((secrets.token_bytes(32),))
    two = RefKeys((*one.layers, secrets.token_bytes(32)))
    assert one.digest("form") == two.digest("form")


def test_a_submission_grant_id_is_the_message_id_and_the_representative_index() -> None:
    assert submission_grant_id("7b0c9a52", 2) == "7b0c9a52:2"


def test_the_same_input_yields_the_same_event_id_and_another_input_another() -> None:
    one = event_id("AuthorizationPosted", "m1", "m1:0")
    assert one == event_id("AuthorizationPosted", "m1", "m1:0")
    assert one != event_id("AuthorizationPosted", "m1", "m1:1")
    assert one != event_id("AuthorizationRejected", "m1", "m1:0")
    assert event_id("SlaAtRisk", "m1", "m1:0", "24") != event_id("SlaAtRisk", "m1", "m1:0", "48")


def test_event_id_fields_cannot_be_confused_by_their_separator() -> None:
    assert event_id("T", "a:b", "c") != event_id("T", "a", "b:c")


def test_a_notification_id_is_one_per_event_and_recipient() -> None:
    """NO-08: at most once per (event_id, recipient)."""
    one = notification_id("e1", "taxpayer", "ref1")
    assert one == notification_id("e1", "taxpayer", "ref1")
    assert one != notification_id("e1", "representative", "030112345")
