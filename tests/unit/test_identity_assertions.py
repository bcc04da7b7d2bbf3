"""AU-02: a taxpayer's online act counts only with an identity assertion that passes every
check; the first failed check is named, never a claim's value."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from joserfc.jwk import KeySet

from caf_client.identity import AAL2, IAL2, mint_identity_assertion
from caf_client.signing import load_private_key
from caf_runtime.authenticity import JwksSource
from devstack.keys import ISSUER, DevKeys
from schemas.codes import ReasonCode, RuleId
from services.intake.identity import (
    Asserted,
    AssertionFailed,
    Check,
    IdentityProviders,
    check_assertion,
)

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 11, 21, 14, 0, tzinfo=dt.UTC)
TIN = "123-45-6789"


@pytest.fixture
def keys(tmp_path: Path) -> DevKeys:
    return DevKeys(tmp_path / "keys").ensure()


def provider_keys(keys: DevKeys) -> KeySet:
    return JwksSource(str(keys.identity_jwks)).keys


def token(keys: DevKeys, **claims: object) -> str:
    values: dict[str, object] = {"tin": TIN, "nonce": "tpa-1", "issued_at": NOW} | claims
    return keys.assertion(**values)  # type: ignore[arg-type]


def failed(verdict: Asserted | AssertionFailed) -> Check:
    assert isinstance(verdict, AssertionFailed), verdict
    return verdict.check


def test_au_02_a_fresh_assertion_for_this_act_at_ial2_aal2_passes(keys: DevKeys) -> None:
    verdict = check_assertion(token(keys), provider_keys(keys), nonce="tpa-1", now=NOW)
    assert isinstance(verdict, Asserted)
    assert (verdict.issuer, verdict.tin) == (ISSUER, "123456789")


def test_au_02_an_assertion_signed_by_another_key_fails_its_signature_check(
    keys: DevKeys, tmp_path: Path
) -> None:
    other = DevKeys(tmp_path / "other").ensure()
    verdict = check_assertion(token(other), provider_keys(keys), nonce="tpa-1", now=NOW)
    assert failed(verdict) is Check.SIGNATURE


@pytest.mark.parametrize(
    ("claims", "now", "check"),
    [
        ({"audience": "someone-else"}, NOW, Check.AUDIENCE),
        ({"issued_at": NOW + dt.timedelta(seconds=61)}, NOW, Check.ISSUED_AT),
        ({}, NOW + dt.timedelta(minutes=11, seconds=1), Check.EXPIRY),
        ({"lifetime": dt.timedelta(minutes=16)}, NOW, Check.LIFETIME),
        ({"acr": IAL2}, NOW, Check.ASSURANCE),
        ({"acr": f"{AAL2} http://idmanagement.gov/ns/assurance/ial/1"}, NOW, Check.ASSURANCE),
        ({"nonce": "tpa-2"}, NOW, Check.NONCE),
        ({"tin": "not a tin"}, NOW, Check.TAXPAYER),
    ],
)
def test_au_02_each_claim_that_is_wrong_names_its_check(
    keys: DevKeys, claims: dict[str, object], now: dt.datetime, check: Check
) -> None:
    verdict = check_assertion(token(keys, **claims), provider_keys(keys), nonce="tpa-1", now=now)
    assert failed(verdict) is check


def test_au_02_clock_skew_of_up_to_a_minute_is_allowed_both_ways(keys: DevKeys) -> None:
    ahead = token(keys, issued_at=NOW + dt.timedelta(seconds=59))
    assert isinstance(check_assertion(ahead, provider_keys(keys), nonce="tpa-1", now=NOW), Asserted)
    just_expired = NOW + dt.timedelta(minutes=10, seconds=59)
    verdict = check_assertion(token(keys), provider_keys(keys), nonce="tpa-1", now=just_expired)
    assert isinstance(verdict, Asserted)


def test_au_02_the_rejection_names_the_check_and_never_the_tin(keys: DevKeys) -> None:
    verdict = check_assertion(token(keys, nonce="x"), provider_keys(keys), nonce="tpa-1", now=NOW)
    assert isinstance(verdict, AssertionFailed)
    rejection = verdict.rejection()
    assert (rejection.rule, rejection.code) == (RuleId.AU_02, ReasonCode.REJ_IDENTITY_ASSERTION)
    assert "'nonce'" in rejection.reason
    assert "6789" not in rejection.reason


async def test_au_02_a_missing_malformed_or_untrusted_assertion_fails_before_any_key(
    keys: DevKeys, tmp_path: Path
) -> None:
    providers = IdentityProviders.from_locations({ISSUER: str(keys.identity_jwks)})
    assert failed(await providers.verify(None, nonce="tpa-1", now=NOW)) is Check.PRESENT
    assert failed(await providers.verify("x.y", nonce="tpa-1", now=NOW)) is Check.FORMAT
    stranger = load_private_key(DevKeys(tmp_path / "s").ensure().root / "secure-access.jwk")
    untrusted = mint_identity_assertion(
        stranger, issuer="https://idp.example", tin=TIN, nonce="tpa-1", issued_at=NOW
    )
    assert failed(await providers.verify(untrusted, nonce="tpa-1", now=NOW)) is Check.ISSUER
    good = await providers.verify(token(keys), nonce="tpa-1", now=NOW)
    assert isinstance(good, Asserted)
