"""The pure rules of Designated Officials (CP311): DO-01 … DO-08 (docs/rules.md §11).

The PIN request and redemption verdicts, the title table, the PIN's days, its attempts and
states, the PIN vault (hash over business and requester, the sealed PIN the portal sends), the
deactivation of an official and a business's Tax Pro Account request (IN-19 as amended).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any, get_args

import pytest
from argon2 import PasswordHasher
from joserfc.jwk import ECKey, KeySet

from caf_client.pins import load_public_keys, new_pin_key, seal_pin
from devstack import messages
from schemas.codes import ReasonCode, Rejection, RuleId
from schemas.entities import BusinessType
from schemas.ids import official_id
from schemas.inbound import Address, TpaRequest
from services.intake.officials import (
    BINDING_TITLES,
    MAX_ATTEMPTS,
    PIN_VALID_DAYS,
    RE_REQUEST_DAYS,
    EntityView,
    Official,
    PinRecord,
    PinState,
    Redemption,
    assess_pin_request,
    may_deactivate,
    next_request_on,
    normalized_title,
    pin_expires_on,
    pin_summary,
    redeem,
    redeemable,
)
from services.intake.pins import ALPHABET, PIN_LENGTH, PinVault, new_pin, normalized_pin
from services.intake.tpa_rules import assess_tpa_request
from tests.unit.builders import RECEIVED, decode

pytestmark = pytest.mark.unit

NOTICE = dt.date(2026, 11, 20)
REQUESTED_AT = dt.datetime(2026, 11, 20, 14, tzinfo=dt.UTC)
ISSUER = "https://login.example.gov"
ALICE = official_id(ISSUER, "subject-alice")
BOB = official_id(ISSUER, "subject-bob")
FAST = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
PIN_FORMAT = re.compile(rf"[{ALPHABET}]{{5}}-[{ALPHABET}]{{5}}")
BUSINESS_ADDRESS = Address(line1="200 Commerce St", city="Nashville", state="TN", country="US")


def entity(entity_type: BusinessType = "corporation", *, active: bool = True) -> EntityView:
    return EntityView(
        entity_id="entity-1",
        entity_type=entity_type,
        active=active,
        taxpayer_ref="b" * 32,
        tin_last4="6789",
    )


def pin_record(**changes: Any) -> PinRecord:
    """Alice's PIN for the business, noticed on NOTICE, not yet entered."""
    record = PinRecord(
        official_id=ALICE,
        pin_hash="$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA",
        requested_at=REQUESTED_AT,
        notice_on=NOTICE,
        expires_on=pin_expires_on(NOTICE),
        attempts=0,
        state=PinState.ISSUED,
        version=1,
        message_id="pin-request-1",
    )
    return dataclasses.replace(record, **changes)


CORPORATION = entity()


def official(person: str = ALICE, *, active: bool = True) -> Official:
    return Official(official_id=person, active=active, activated_at=REQUESTED_AT)


def ask(
    business: EntityView | None = CORPORATION,
    *,
    title: str | None = "President",
    attests_authority: bool = True,
    previous: PinRecord | None = None,
    today: dt.date = NOTICE,
) -> tuple[RuleId, ReasonCode] | None:
    """The verdict on a PIN request, as (rule, code)."""
    rejection = assess_pin_request(
        business,
        title=title,
        attests_authority=attests_authority,
        previous=previous,
        today=today,
    )
    return ref(rejection)


def ref(rejection: Rejection | None) -> tuple[RuleId, ReasonCode] | None:
    return (rejection.rule, rejection.code) if rejection else None


def private_jwks(*keys: ECKey) -> str:
    return json.dumps(KeySet(list(keys)).as_dict(private=True))


def public_keys(*keys: ECKey) -> KeySet:
    return KeySet.import_key_set(KeySet(list(keys)).as_dict(private=False))


@pytest.fixture(scope="module")
def pin_key() -> ECKey:
    return new_pin_key("pin-1")


@pytest.fixture(scope="module")
def vault(pin_key: ECKey) -> PinVault:
    return PinVault.from_jwks(private_jwks(pin_key), hasher=FAST)


# DO-01: the business --------------------------------------------------------------------------


@pytest.mark.parametrize("business", [None, entity(active=False)])
def test_a_pin_request_for_an_unknown_or_closed_business_is_refused(
    business: EntityView | None,
) -> None:
    """DO-01: refused before the title is looked at."""
    unknown = (RuleId.DO_01, ReasonCode.REJ_ENTITY_UNKNOWN)
    assert ask(business) == unknown
    assert (
        ask(business, title="Bookkeeper", attests_authority=False, previous=pin_record()) == unknown
    )


@pytest.mark.parametrize("business", [None, entity(active=False)])
def test_a_pin_for_an_unknown_or_closed_business_is_not_redeemable(
    business: EntityView | None,
) -> None:
    """DO-01: even a good PIN of a business that closed since."""
    assert ref(redeemable(business, pin_record(), NOTICE)) == (
        RuleId.DO_01,
        ReasonCode.REJ_ENTITY_UNKNOWN,
    )
    assert ref(redeemable(business, None, NOTICE)) == (RuleId.DO_01, ReasonCode.REJ_ENTITY_UNKNOWN)


# DO-02: the title table -----------------------------------------------------------------------


def test_the_title_table_covers_every_kind_of_business() -> None:
    """DO-02."""
    assert set(BINDING_TITLES) == set(get_args(BusinessType))
    assert BINDING_TITLES["corporation"] == BINDING_TITLES["s_corporation"]


@pytest.mark.parametrize(
    ("entity_type", "title"),
    [
        ("corporation", "President"),
        ("corporation", "Vice-President"),
        ("corporation", "vice  president"),
        ("corporation", "CEO"),
        ("corporation", "Chief Financial Officer"),
        ("corporation", "Assistant Treasurer"),
        ("corporation", "Corporate Officer"),
        ("s_corporation", "Secretary"),
        ("s_corporation", "coo"),
        ("partnership", "General Partner"),
        ("partnership", "Managing-Partner"),
        ("partnership", "partner"),
        ("llc", "MANAGING MEMBER"),
        ("llc", "Sole Member"),
        ("llc", "Manager."),
        ("trust", "Trustee"),
        ("estate", "Executrix"),
        ("estate", "Personal Representative"),
        ("estate", "administrator"),
        ("sole_proprietor", "Owner"),
        ("sole_proprietor", "Sole-Proprietor"),
    ],
)
def test_a_title_that_binds_the_kind_of_business_gets_a_pin(
    entity_type: BusinessType, title: str
) -> None:
    """DO-02: case, hyphens, dots and spaces are ignored."""
    assert ask(entity(entity_type), title=title) is None


@pytest.mark.parametrize(
    ("entity_type", "title"),
    [
        ("corporation", "Bookkeeper"),
        ("corporation", "Owner"),
        ("corporation", "Trustee"),
        ("corporation", "Vice"),
        ("corporation", "President and CEO"),
        ("s_corporation", "Member"),
        ("partnership", "Limited Partner"),
        ("partnership", "Member"),
        ("llc", "Partner"),
        ("llc", "President"),
        ("trust", "President"),
        ("trust", "Beneficiary"),
        ("estate", "Trustee"),
        ("estate", "Heir"),
        ("sole_proprietor", "Manager"),
        ("corporation", ""),
        ("corporation", None),
    ],
)
def test_a_title_that_cannot_bind_the_kind_of_business_is_refused(
    entity_type: BusinessType, title: str | None
) -> None:
    """DO-02."""
    assert ask(entity(entity_type), title=title) == (RuleId.DO_02, ReasonCode.REJ_DO_AUTHORITY)


def test_a_binding_title_without_the_attestation_of_authority_is_refused() -> None:
    """DO-02."""
    assert ask(title="President", attests_authority=False) == (
        RuleId.DO_02,
        ReasonCode.REJ_DO_AUTHORITY,
    )


@pytest.mark.parametrize(
    ("title", "normalized"),
    [
        ("Vice-President", "vice president"),
        ("  MANAGING   MEMBER ", "managing member"),
        ("Chief Executive Officer.", "chief executive officer"),
        ("Sole-Proprietor", "sole proprietor"),
        ("C.E.O.", "ceo"),
        ("C.O.O", "coo"),
        ("Owner\u2019s representative", "owners representative"),
        (None, ""),
    ],
)
def test_a_title_is_compared_in_lower_case_words(title: str | None, normalized: str) -> None:
    """DO-02."""
    assert normalized_title(title) == normalized


def test_the_authority_is_checked_before_the_fourteen_day_wait() -> None:
    """DO-02 before DO-03."""
    assert ask(title="Bookkeeper", previous=pin_record(), today=NOTICE) == (
        RuleId.DO_02,
        ReasonCode.REJ_DO_AUTHORITY,
    )


# DO-03: the fourteen-day wait -----------------------------------------------------------------


def test_a_new_pin_may_be_requested_on_day_14_after_the_notice_but_not_on_day_13() -> None:
    """DO-03."""
    previous = pin_record(notice_on=NOTICE, expires_on=pin_expires_on(NOTICE))
    assert RE_REQUEST_DAYS == 14
    assert next_request_on(previous) == dt.date(2026, 12, 4)
    assert ask(previous=previous, today=NOTICE) == (RuleId.DO_03, ReasonCode.REJ_DO_PIN_TOO_SOON)
    assert ask(previous=previous, today=dt.date(2026, 12, 3)) == (
        RuleId.DO_03,
        ReasonCode.REJ_DO_PIN_TOO_SOON,
    )
    assert ask(previous=previous, today=dt.date(2026, 12, 4)) is None
    assert ask(previous=previous, today=dt.date(2026, 12, 5)) is None


@pytest.mark.parametrize("state", list(PinState))
def test_the_fourteen_day_wait_holds_whatever_became_of_the_last_pin(state: PinState) -> None:
    """DO-03: a used or locked PIN does not shorten the wait."""
    previous = pin_record(state=state)
    assert ask(previous=previous, today=NOTICE + dt.timedelta(days=13)) == (
        RuleId.DO_03,
        ReasonCode.REJ_DO_PIN_TOO_SOON,
    )
    assert ask(previous=previous, today=NOTICE + dt.timedelta(days=14)) is None


def test_a_first_request_has_no_wait() -> None:
    """DO-03."""
    assert ask(previous=None, today=NOTICE) is None


# DO-04 / DO-05: the PIN's thirty days ---------------------------------------------------------


def test_a_pin_expires_thirty_days_after_its_notice() -> None:
    """DO-04."""
    assert PIN_VALID_DAYS == 30
    assert pin_expires_on(NOTICE) == dt.date(2026, 12, 20)
    assert pin_expires_on(dt.date(2028, 2, 10)) == dt.date(2028, 3, 11)  # a leap year


def test_a_pin_is_redeemable_through_day_30_after_its_notice_and_refused_on_day_31() -> None:
    """DO-04, DO-05."""
    pin = pin_record()
    assert redeemable(entity(), pin, NOTICE) is None
    assert redeemable(entity(), pin, dt.date(2026, 12, 19)) is None  # day 29
    assert redeemable(entity(), pin, dt.date(2026, 12, 20)) is None  # day 30
    assert ref(redeemable(entity(), pin, dt.date(2026, 12, 21))) == (  # day 31
        RuleId.DO_05,
        ReasonCode.REJ_DO_PIN_EXPIRED,
    )


# DO-05: attempts and states -------------------------------------------------------------------


def test_four_wrong_entries_count_down_and_the_fifth_locks_the_pin() -> None:
    """DO-05."""
    assert MAX_ATTEMPTS == 5
    pin = pin_record()
    for attempts_left in (4, 3, 2, 1):
        assert redeemable(entity(), pin, NOTICE) is None
        verdict = redeem(pin, matches=False)
        assert verdict.outcome is Redemption.WRONG
        assert ref(verdict.rejection) == (RuleId.DO_05, ReasonCode.REJ_DO_PIN_WRONG)
        assert verdict.state is PinState.ISSUED
        assert verdict.attempts == MAX_ATTEMPTS - attempts_left
        assert verdict.attempts_left == attempts_left
        pin = dataclasses.replace(pin, attempts=verdict.attempts, state=verdict.state)
    verdict = redeem(pin, matches=False)
    assert verdict.outcome is Redemption.LOCK
    assert ref(verdict.rejection) == (RuleId.DO_05, ReasonCode.REJ_DO_PIN_LOCKED)
    assert verdict.state is PinState.LOCKED
    assert verdict.attempts == MAX_ATTEMPTS
    assert verdict.attempts_left == 0


def test_a_locked_pin_is_refused_even_with_the_right_pin() -> None:
    """DO-05: refused before the PIN is compared."""
    locked = pin_record(attempts=MAX_ATTEMPTS, state=PinState.LOCKED)
    assert ref(redeemable(entity(), locked, NOTICE)) == (RuleId.DO_05, ReasonCode.REJ_DO_PIN_LOCKED)


def test_a_used_pin_is_not_redeemed_again() -> None:
    """DO-05: reuse."""
    used = pin_record(state=PinState.REDEEMED)
    assert ref(redeemable(entity(), used, NOTICE)) == (RuleId.DO_05, ReasonCode.REJ_DO_PIN_USED)
    late = dt.date(2026, 12, 21)
    assert ref(redeemable(entity(), used, late)) == (RuleId.DO_05, ReasonCode.REJ_DO_PIN_USED)


def test_no_pin_for_this_person_and_business_is_not_issued() -> None:
    """DO-05."""
    assert ref(redeemable(entity(), None, NOTICE)) == (
        RuleId.DO_05,
        ReasonCode.REJ_DO_PIN_NOT_ISSUED,
    )


@pytest.mark.parametrize("attempts", [0, 1, 4])
def test_a_matching_pin_activates_and_keeps_its_attempts(attempts: int) -> None:
    """DO-05: a match after wrong entries still activates."""
    verdict = redeem(pin_record(attempts=attempts), matches=True)
    assert verdict.outcome is Redemption.ACTIVATE
    assert verdict.rejection is None
    assert verdict.state is PinState.REDEEMED
    assert verdict.attempts == attempts
    assert verdict.attempts_left == MAX_ATTEMPTS - attempts


# DO-05: only the requester, only for that business --------------------------------------------


def test_an_official_id_is_32_hex_digits_of_the_issuer_and_the_subject() -> None:
    """DO-05: the person is their issuer and subject."""
    assert re.fullmatch(r"[0-9a-f]{32}", ALICE)
    assert official_id(ISSUER, "subject-alice") == ALICE
    assert ALICE != BOB
    assert official_id("https://other-idp.example", "subject-alice") != ALICE
    assert official_id(ISSUER, "subject-alice ") != ALICE


async def test_a_pin_hash_matches_only_the_business_and_the_requester_it_was_made_for(
    vault: PinVault,
) -> None:
    """DO-04, DO-05: wrong requester, wrong business."""
    pin = new_pin()
    stored = await vault.hash("entity-a", ALICE, pin)
    assert pin not in stored
    assert stored.startswith("$argon2id$")
    assert await vault.matches(stored, "entity-a", ALICE, pin)
    assert await vault.matches(stored, "entity-a", ALICE, pin.lower().replace("-", " "))
    assert not await vault.matches(stored, "entity-b", ALICE, pin)
    assert not await vault.matches(stored, "entity-a", BOB, pin)
    assert not await vault.matches(stored, "entity-a", ALICE, new_pin())
    assert not await vault.matches("not a hash", "entity-a", ALICE, pin)


async def test_the_same_pin_hashes_differently_each_time(vault: PinVault) -> None:
    """DO-04: salted."""
    pin = new_pin()
    first = await vault.hash("entity-a", ALICE, pin)
    second = await vault.hash("entity-a", ALICE, pin)
    assert first != second
    assert await vault.matches(second, "entity-a", ALICE, pin)


# DO-05: the sealed PIN ------------------------------------------------------------------------


def test_a_pin_sealed_to_the_public_key_opens(vault: PinVault, pin_key: ECKey) -> None:
    """DO-05."""
    pin = new_pin()
    typed = " ".join(pin.lower().replace("-", ""))
    opened = vault.open(seal_pin(typed, public_keys(pin_key)))
    assert opened == typed
    assert normalized_pin(opened) == normalized_pin(pin) == pin.replace("-", "")


def test_a_pin_sealed_to_the_published_keys_file_opens(
    vault: PinVault, pin_key: ECKey, tmp_path: Path
) -> None:
    """DO-05: the portal's keys, as published (`load_public_keys`)."""
    path = tmp_path / "pin-keys.json"
    path.write_text(json.dumps(KeySet([pin_key]).as_dict(private=False)))
    published = load_public_keys(path)
    assert not any(key.is_private for key in published.keys)
    pin = new_pin()
    assert vault.open(seal_pin(pin, published)) == pin


def _b64(document: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def _changed(token: str, part: int) -> str:
    """The token with one character of one of its five parts changed."""
    parts = token.split(".")
    segment = parts[part]
    middle = len(segment) // 2
    parts[part] = (
        segment[:middle] + ("A" if segment[middle] != "A" else "B") + segment[middle + 1 :]
    )
    return ".".join(parts)


@pytest.mark.parametrize(
    "damage",
    [
        "truncated",
        "no tag",
        "header",
        "encrypted key",
        "iv",
        "ciphertext",
        "tag",
        "alg dir",
        "no alg",
    ],
)
def test_a_damaged_sealed_pin_does_not_open(vault: PinVault, pin_key: ECKey, damage: str) -> None:
    """DO-05: it counts as a wrong entry."""
    sealed = seal_pin(new_pin(), public_keys(pin_key))
    parts = sealed.split(".")
    header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    damaged = {
        "truncated": sealed[: len(sealed) // 2],
        "no tag": ".".join(parts[:4]),
        "header": _changed(sealed, 0),
        "encrypted key": _changed(sealed, 1),
        "iv": _changed(sealed, 2),
        "ciphertext": _changed(sealed, 3),
        "tag": _changed(sealed, 4),
        "alg dir": ".".join([_b64(header | {"alg": "dir"}), *parts[1:]]),
        "no alg": ".".join([_b64({k: v for k, v in header.items() if k != "alg"}), *parts[1:]]),
    }[damage]
    assert damaged != sealed
    assert vault.open(damaged) is None


@pytest.mark.parametrize(
    "garbage", [None, "", "garbage", "a.b.c.d.e", "....", "\u00e9.\u00e9.\u00e9.\u00e9.\u00e9"]
)
def test_garbage_does_not_open(vault: PinVault, garbage: str | None) -> None:
    """DO-05."""
    assert vault.open(garbage) is None


@pytest.mark.parametrize(
    "header",
    [
        ["alg", "enc"],
        "alg enc",
        {"alg": "ECDH-ES+A256KW", "enc": "A256GCM", "kid": "pin-1", "epk": "garbage"},
        {"alg": "ECDH-ES+A256KW", "enc": "A256GCM", "kid": "pin-1", "epk": {"kty": "EC"}},
        {"alg": "ECDH-ES+A256KW", "enc": "A256GCM", "kid": ["pin-1"]},
    ],
)
def test_a_forged_header_does_not_open(vault: PinVault, pin_key: ECKey, header: object) -> None:
    """DO-05."""
    parts = seal_pin(new_pin(), public_keys(pin_key)).split(".")
    assert vault.open(".".join([_b64(header), *parts[1:]])) is None


@pytest.mark.parametrize("kid", ["pin-1", "pin-2"])
def test_a_pin_sealed_to_another_key_does_not_open(vault: PinVault, kid: str) -> None:
    """DO-05: another key, whether or not it claims our key's id."""
    stranger = new_pin_key(kid)
    assert vault.open(seal_pin(new_pin(), public_keys(stranger))) is None


def test_a_vault_opens_a_pin_sealed_to_any_of_its_keys(pin_key: ECKey) -> None:
    """DO-05: during a rotation both keys open."""
    next_key = new_pin_key("pin-2")
    both = PinVault.from_jwks(private_jwks(next_key, pin_key), hasher=FAST)
    pin = new_pin()
    assert both.open(seal_pin(pin, public_keys(next_key))) == pin
    assert both.open(seal_pin(pin, public_keys(pin_key))) == pin


def test_a_vault_refuses_public_keys(pin_key: ECKey) -> None:
    """DO-05: only private keys open."""
    public_only = json.dumps(KeySet([pin_key]).as_dict(private=False))
    with pytest.raises(ValueError, match="private EC keys"):
        PinVault.from_jwks(public_only, hasher=FAST)
    mixed = {"keys": [pin_key.as_dict(private=True), new_pin_key("pin-2").as_dict(private=False)]}
    with pytest.raises(ValueError, match="private EC keys"):
        PinVault.from_jwks(json.dumps(mixed), hasher=FAST)


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ("{}", "not a JWKS"),
        ("[1]", "not a JWKS"),
        ('{"keys": []}', "not a JWKS"),
        ('{"keys": [{"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ"}]}', "private EC keys"),
    ],
)
def test_a_vault_refuses_configuration_that_is_not_a_set_of_ec_keys(
    document: str, complaint: str
) -> None:
    """DO-05: a misconfigured service stops at start-up with a ValueError that names the
    setting, never later on a PIN."""
    with pytest.raises(ValueError, match=complaint) as raised:
        PinVault.from_jwks(document, hasher=FAST)
    assert "INTAKE_PIN_KEYS" in str(raised.value)


# DO-04: the PIN -------------------------------------------------------------------------------


def test_a_pin_is_ten_characters_of_the_alphabet_in_two_groups_of_five() -> None:
    """DO-04."""
    assert len(ALPHABET) == 31
    assert not set("01OIL") & set(ALPHABET)
    assert PIN_LENGTH == 10
    for _ in range(50):
        assert PIN_FORMAT.fullmatch(new_pin())


def test_fifty_pins_are_all_different() -> None:
    """DO-04: drawn afresh each time."""
    pins = [new_pin() for _ in range(50)]
    assert len(set(pins)) == 50


@pytest.mark.parametrize("typed", ["abcde-fghjk", "ABCDE FGHJK", " abcdefghjk ", "Ab-Cd-Ef-Gh-Jk"])
def test_a_pin_is_compared_upper_case_without_spaces_or_hyphens(typed: str) -> None:
    """DO-05."""
    assert normalized_pin(typed) == "ABCDEFGHJK"


# DO-04: a new request replaces the PIN --------------------------------------------------------


def test_a_new_pin_replaces_the_last_and_keeps_its_summary_without_the_hash() -> None:
    """DO-04."""
    old = pin_record(attempts=3, version=4, pin_hash="$argon2id$old-hash")
    later = REQUESTED_AT + dt.timedelta(days=14)
    new = old.replaced_by(
        pin_hash="$argon2id$new-hash",
        requested_at=later,
        notice_on=dt.date(2026, 12, 4),
        message_id="pin-request-2",
    )
    assert new.official_id == old.official_id
    assert new.pin_hash == "$argon2id$new-hash"
    assert new.requested_at == later
    assert new.notice_on == dt.date(2026, 12, 4)
    assert new.expires_on == dt.date(2027, 1, 3)
    assert new.attempts == 0
    assert new.state is PinState.ISSUED
    assert new.version == 5
    assert new.message_id == "pin-request-2"
    assert new.history == (pin_summary(old),)
    assert new.history[0] == {
        "message_id": "pin-request-1",
        "requested_at": "2026-11-20T14:00:00+00:00",
        "notice_on": "2026-11-20",
        "expires_on": "2026-12-20",
        "attempts": 3,
        "state": "issued",
    }
    third = new.replaced_by(
        pin_hash="$argon2id$third",
        requested_at=later,
        notice_on=dt.date(2026, 12, 18),
        message_id="pin-request-3",
    )
    assert third.history == (pin_summary(old), pin_summary(new))
    assert "hash" not in json.dumps(third.history)


def test_a_pin_summary_never_holds_the_hash() -> None:
    """DO-04."""
    summary = pin_summary(pin_record(pin_hash="$argon2id$secret-hash"))
    assert "pin_hash" not in summary
    assert "secret-hash" not in json.dumps(summary)


# DO-06 / DO-07: deactivation ------------------------------------------------------------------


@pytest.mark.parametrize("acting", [None, official(ALICE, active=False)])
def test_only_an_active_official_may_deactivate_one(acting: Official | None) -> None:
    """DO-06, DO-07."""
    assert ref(may_deactivate(acting, official(BOB))) == (
        RuleId.DO_06,
        ReasonCode.REJ_DO_NOT_OFFICIAL,
    )


@pytest.mark.parametrize("target", [None, official(BOB, active=False), official(ALICE)])
def test_an_official_deactivates_only_another_active_official(target: Official | None) -> None:
    """DO-07: not a stranger, not one already inactive, not themselves."""
    assert ref(may_deactivate(official(ALICE), target)) == (
        RuleId.DO_07,
        ReasonCode.REJ_DO_NOT_OFFICIAL,
    )


def test_an_active_official_deactivates_another_active_official() -> None:
    """DO-07: either of two officials may remove the other."""
    assert may_deactivate(official(ALICE), official(BOB)) is None
    assert may_deactivate(official(BOB), official(ALICE)) is None


# DO-08: a business's Tax Pro Account request --------------------------------------------------


def business_request(**taxpayer: Any) -> TpaRequest:
    """A clean Tax Pro Account request of a corporation (EIN) for its Form 1120; `taxpayer`
    replaces fields of the taxpayer."""
    built = messages.tpa_request(
        taxpayer=messages.business(address=BUSINESS_ADDRESS),
        periods=["2025"],
        form_number="1120",
        request_id="tpa-1",
        message_id="t-1",
        sent_at=dt.datetime.fromisoformat("2026-11-20T14:00:00-05:00"),
    )
    changes = {f"taxpayer__{field}": value for field, value in taxpayer.items()}
    message = decode(messages.document(built, **changes))
    assert isinstance(message, TpaRequest)
    return message


def test_a_business_request_is_ineligible_without_an_active_official() -> None:
    """DO-08 amending IN-19."""
    assessment = assess_tpa_request(business_request(), RECEIVED)
    assert ref(assessment.rejection) == (RuleId.IN_19, ReasonCode.REJ_TPA_TP_INELIGIBLE)
    assert assessment.normalized_tin == "123456789"


def test_a_business_request_is_accepted_with_an_active_official() -> None:
    """DO-08 amending IN-19."""
    assessment = assess_tpa_request(business_request(), RECEIVED, business_with_official=True)
    assert assessment.rejection is None
    assert assessment.normalized_tin == "123456789"
    assert assessment.caf_numbers == ("030112345",)


def test_an_official_does_not_make_an_individual_abroad_eligible() -> None:
    """DO-08 amends IN-19 for businesses only."""
    abroad = {"line1": "1 Rue", "city": "Paris", "state": "", "country": "FR"}
    message = business_request(
        tin="123-45-6789", tin_type="SSN", entity_type="individual", address=abroad
    )
    rejection = assess_tpa_request(message, RECEIVED, business_with_official=True).rejection
    assert ref(rejection) == (RuleId.IN_19, ReasonCode.REJ_TPA_TP_INELIGIBLE)


def test_a_business_request_still_needs_its_name_and_address() -> None:
    """DO-08 with IN-04."""
    rejection = assess_tpa_request(
        business_request(address=None), RECEIVED, business_with_official=True
    ).rejection
    assert ref(rejection) == (RuleId.IN_04, ReasonCode.REJ_TP_ID_MISSING)
