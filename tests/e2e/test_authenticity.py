"""Only the rightful party acts, through the four services on the real broker.

AU-01: records nobody allowed signed are dead letters and cause nothing. AU-02: a Tax Pro
Account decision or an online revocation counts only with a valid identity assertion of the
request's taxpayer; each failed check is a REJ-IDENTITY-ASSERTION naming that check.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from joserfc.jwk import OKPKey

from caf_client.identity import IAL2, mint_identity_assertion
from caf_client.signing import SIGNATURE_HEADER, Signer
from devstack.keys import ISSUER
from schemas import topics
from tests.e2e.conftest import Pipeline, random_ssn, ref_of, submission, unique_caf
from tests.e2e.test_pipeline import removal
from tests.e2e.test_tax_pro_account import decision, requested, tpa_request
from tests.signing import assertion, keys, signed_headers

pytestmark = pytest.mark.e2e


def dead_letters(pipeline: Pipeline, message_id: str) -> list[dict[str, str]]:
    return [
        {k: v.decode() for k, v in r.headers}
        for r in pipeline.inbound_dead_letters()
        if r.value and message_id.encode() in r.value
    ]


def forged(value: bytes) -> list[tuple[str, bytes]]:
    """Signed by a key that is on no list, under a listed publisher's name."""
    stranger = OKPKey.generate_key("Ed25519", parameters={"kid": "forms-intake@stolen"})
    return Signer(stranger).headers(value)


@pytest.mark.parametrize(
    "case", ["unsigned", "unlisted key", "publisher not allowed for the kind", "tampered value"]
)
async def test_au_01_a_record_nobody_allowed_signed_is_a_dead_letter_with_no_event(
    pipeline: Pipeline, case: str
) -> None:
    ssn, caf = random_ssn(), unique_caf()
    await pipeline.register(caf, "Avery Smith")
    form = submission(ssn, [{"caf_number": caf}])
    value = json.dumps(form).encode()
    headers = {
        "unsigned": [],
        "unlisted key": forged(value),
        "publisher not allowed for the kind": signed_headers(value, kid="tax-pro-account"),
        "tampered value": signed_headers(value.replace(b"Jordan", b"Jordon")),
    }[case]
    await pipeline.send_inbound(value, key=form["message_id"], headers=headers)
    [letter] = await pipeline.until(lambda: dead_letters(pipeline, form["message_id"]))
    assert letter["error-class"] == "SignatureInvalid"
    assert ssn not in json.dumps(letter)
    control = submission(random_ssn(), [{"caf_number": caf}])  # sent after: it has its outcome
    await pipeline.send_inbound(control)
    await pipeline.until(lambda: pipeline.events(ref_of(control["taxpayer"]["tin"])))
    assert pipeline.events(ref_of(ssn)) == []


async def test_au_01_a_registry_record_not_signed_by_the_registry_feed_changes_nothing(
    pipeline: Pipeline,
) -> None:
    """A forged 'good standing' record does not reach the validator's view: the form of the
    suspended representative is still rejected."""
    ssn, caf = random_ssn(), unique_caf()
    await pipeline.register(caf, "Avery Smith", status="S")
    forgery = {"caf_number": caf, "name": "Avery Smith", "status_code": ""}
    await pipeline.publish(topics.PRACTITIONERS, caf, forgery, None, kid="forms-intake")
    await pipeline.send_inbound(submission(ssn, [{"caf_number": caf}]))
    [rejected] = await pipeline.terminal(ref_of(ssn), 1)
    assert rejected["reason_code"] == "REJ-REP-NOT-GOOD-STANDING"


def untrusted_issuer(tin: str, nonce: str) -> str:
    rogue = OKPKey.generate_key("Ed25519", parameters={"kid": "secure-access"}, private=True)
    return mint_identity_assertion(rogue, issuer="https://idp.example", tin=tin, nonce=nonce)


CASES: dict[str, Any] = {
    "no assertion": lambda tin, request_id: None,
    "expired": lambda tin, request_id: assertion(
        tin=tin, nonce=request_id, issued_at=datetime.now(UTC) - timedelta(minutes=20)
    ),
    "wrong nonce": lambda tin, request_id: assertion(tin=tin, nonce="tpa-someone-else"),
    "low acr": lambda tin, request_id: assertion(tin=tin, nonce=request_id, acr=IAL2),
    "another taxpayer's TIN": lambda tin, request_id: assertion(tin=random_ssn(), nonce=request_id),
    "untrusted issuer": untrusted_issuer,
}
CHECK = {
    "no assertion": "present",
    "expired": "exp",
    "wrong nonce": "nonce",
    "low acr": "acr",
    "another taxpayer's TIN": "tin",
    "untrusted issuer": "issuer",
}


@pytest.mark.parametrize("case", list(CASES))
async def test_au_02_a_decision_without_a_valid_assertion_of_its_taxpayer_is_rejected(
    pipeline: Pipeline, case: str
) -> None:
    ssn, _, request = await requested(pipeline)
    await pipeline.until(lambda: pipeline.events(ref_of(ssn)))
    approval = decision(request) | {"identity_assertion": CASES[case](ssn, request["request_id"])}
    await pipeline.send_inbound(approval, key=request["request_id"])
    [rejected] = await pipeline.terminal(ref_of(ssn), 1)
    assert (rejected["type"], rejected["reason_code"], rejected["rule_id"]) == (
        "AuthorizationRejected",
        "REJ-IDENTITY-ASSERTION",
        "AU-02",
    )
    assert f"'{CHECK[case]}' check" in rejected["reason"]
    assert ssn not in json.dumps(rejected)
    assert ssn.replace("-", "") not in json.dumps(rejected)


async def test_au_02_an_assertion_is_good_once_and_a_correct_one_posts(
    pipeline: Pipeline,
) -> None:
    """The first decision posts; an assertion with the same jti, for the taxpayer's next
    request, is refused as replayed."""
    ssn, caf = random_ssn(), unique_caf()
    await pipeline.register(caf, "Avery Smith")
    first, second = tpa_request(ssn, caf), tpa_request(ssn, caf)
    for request in (first, second):
        await pipeline.send_inbound(request, key=request["request_id"])
    jti = str(uuid.uuid4())
    approval = decision(first) | {
        "identity_assertion": assertion(tin=ssn, nonce=first["request_id"], jti=jti)
    }
    await pipeline.send_inbound(approval, key=first["request_id"])
    posted = await pipeline.terminal(ref_of(ssn), 1)
    assert [(e["type"], e["grant_id"]) for e in posted] == [
        ("AuthorizationPosted", first["request_id"])
    ]
    replayed = decision(second) | {
        "identity_assertion": assertion(tin=ssn, nonce=second["request_id"], jti=jti)
    }
    await pipeline.send_inbound(replayed, key=second["request_id"])
    events = await pipeline.terminal(ref_of(ssn), 2)
    [rejected] = [e for e in events if e["grant_id"] == second["request_id"]]
    assert rejected["reason_code"] == "REJ-IDENTITY-ASSERTION"
    assert "'jti' check" in rejected["reason"]


async def test_au_02_an_online_revocation_counts_only_with_the_taxpayers_assertion(
    pipeline: Pipeline,
) -> None:
    ssn, caf = random_ssn(), unique_caf()
    await pipeline.register(caf, "Avery Smith")
    await pipeline.send_inbound(submission(ssn, [{"caf_number": caf}]))
    await pipeline.terminal(ref_of(ssn), 1)
    online = {"channel": "online_account", "caf_numbers": None}
    bare = removal("revocation", ssn, **online)
    value = json.dumps(bare).encode()
    await pipeline.send_inbound(
        value, key=bare["message_id"], headers=signed_headers(value, kid="online-account")
    )
    [refused] = await pipeline.until(
        lambda: [e for e in pipeline.events(ref_of(ssn)) if e["message_id"] == bare["message_id"]]
    )
    assert (refused["reason_code"], refused["rule_id"]) == ("REJ-IDENTITY-ASSERTION", "AU-02")
    proven = removal("revocation", ssn, **online)
    proven["identity_assertion"] = assertion(tin=ssn, nonce=proven["message_id"])
    value = json.dumps(proven).encode()
    await pipeline.send_inbound(
        value, key=proven["message_id"], headers=signed_headers(value, kid="online-account")
    )
    [revoked] = await pipeline.until(
        lambda: [e for e in pipeline.events(ref_of(ssn)) if e["type"] == "AuthorizationRevoked"]
    )
    assert revoked["message_id"] == proven["message_id"]


def test_the_session_keys_sign_with_the_kid_the_allow_list_names() -> None:
    assert keys().signer_for("tpa_decision").kid == "online-account"
    assert SIGNATURE_HEADER == "caf-signature"
    assert ISSUER == "https://secure-access.local"
