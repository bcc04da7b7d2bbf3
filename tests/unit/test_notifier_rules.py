"""Notifier rules NO-01 … NO-08 (docs/rules.md §4)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.base import MAX_TEXT
from schemas.codec import EVENT
from schemas.events import Event
from services.notifier.rules import IRS_PHONE, MAX_MATTERS, notifications_for
from tests.unit.builders import NOW

pytestmark = pytest.mark.unit

TIN = "123456789"


def event(type_: str, **fields: Any) -> Event:
    values: dict[str, Any] = {
        "event_id": f"e-{type_}",
        "type": type_,
        "occurred_at": NOW.isoformat(),
        "taxpayer_ref": "a" * 32,
        "tin_last4": TIN[-4:],
        "form": "2848",
        "message_id": "m-1",
        "grant_id": "m-1:0",
        "caf_number": "030112345",
        "stage": "caf_poster",
        "representative_name": "Avery Smith",
    }
    values.update(fields)
    return EVENT.validate_python(values, strict=False)


MATTERS = [{"tax_type": "Income", "form_number": "1040", "periods": ["2024"]}]
REFUSAL = {
    "reason_code": "REJ-REP-NOT-GOOD-STANDING",
    "reason": "Not in good standing.",
    "rule_id": "VA-01",
}


def sent(e: Event) -> list[tuple[str, str, str]]:
    return [(n.recipient, n.recipient_ref, n.template) for n in notifications_for(e, NOW)]


def test_no_01_a_pending_request_asks_the_taxpayer_to_decide() -> None:
    """NO-01."""
    e = event(
        "AuthorizationPendingApproval",
        grant_id="tpa-1",
        request_id="tpa-1",
        expires_on="2026-12-20",
    )
    [note] = notifications_for(e, NOW)
    assert (note.recipient, note.template) == ("taxpayer", "authorization_pending_approval")
    assert "Approve or decline" in note.body


def test_no_02_a_posted_grant_tells_the_taxpayer_who_has_access_and_whom_to_call() -> None:
    """NO-02."""
    e = event(
        "AuthorizationPosted",
        authorization_id="m-1",
        tax_matters=MATTERS,
        receive_notices=True,
        received_at=NOW.isoformat(),
        posted_at=NOW.isoformat(),
    )
    [note] = notifications_for(e, NOW)
    assert (note.recipient, note.recipient_ref) == ("taxpayer", "a" * 32)
    assert "Avery Smith" in note.body
    assert "Income 1040 2024" in note.body
    assert "did not authorize" in note.body


@pytest.mark.parametrize("type_", ["AuthorizationRevoked", "AuthorizationWithdrawn"])
def test_no_03_revocations_and_withdrawals_tell_the_taxpayer_and_the_representative(
    type_: str,
) -> None:
    """NO-03."""
    extra = {"revoked_by": "REV-BY-TAXPAYER"} if type_ == "AuthorizationRevoked" else {}
    e = event(type_, authorization_id="m-1", tax_matters=MATTERS, message_id="r-1", **extra)
    assert sorted(r for r, _, _ in sent(e)) == ["representative", "taxpayer"]


def test_no_04_a_refused_form_grant_tells_the_representative_with_the_reason() -> None:
    """NO-04."""
    [note] = notifications_for(event("AuthorizationRejected", **REFUSAL), NOW)
    assert (note.recipient, note.recipient_ref) == ("representative", "030112345")
    assert "Not in good standing." in note.body


def test_no_04_a_refused_tpa_grant_also_tells_the_taxpayer() -> None:
    """NO-04."""
    e = event("AuthorizationRejected", grant_id="tpa-9", **REFUSAL)
    assert sorted(r for r, _, _ in sent(e)) == ["representative", "taxpayer"]


def test_no_04_a_refused_revocation_tells_the_taxpayer_who_sent_it() -> None:
    """NO-04."""
    e = event(
        "AuthorizationRejected",
        grant_id="r-1",
        message_id="r-1",
        caf_number=None,
        reason_code="REJ-NOTHING-TO-REVOKE",
        reason="Nothing matches.",
        rule_id="PO-10",
    )
    assert sent(e) == [("taxpayer", "a" * 32, "authorization_refused")]


def test_no_05_a_new_caf_number_is_announced_to_the_representative() -> None:
    """NO-05."""
    [note] = notifications_for(event("CafNumberAssigned", caf_number="900000001"), NOW)
    assert (note.recipient, note.template) == ("representative", "caf_number_assigned")
    assert "900000001" in note.body


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        ("REJ-REP-PENDING-REVIEW", "VA-02"),
        ("REJ-REP-NAME-MISMATCH", "VA-05"),
        ("HOLD-VELOCITY", "VA-07"),
    ],
)
def test_no_06_fraud_signals_alert_the_practitioner(code: str, rule: str) -> None:
    """NO-06."""
    type_ = "AuthorizationNotProcessed" if code.startswith("HOLD") else "AuthorizationRejected"
    e = event(type_, reason_code=code, reason="Held.", rule_id=rule)
    assert sent(e) == [("representative", "030112345", "suspicious_activity")]


def test_no_07_a_breached_sla_alerts_sres_not_the_taxpayer() -> None:
    """NO-07."""
    e = event("SlaBreached", ready_at=NOW.isoformat(), age_hours=48.5)
    assert sent(e) == [("sre", "sre", "sla_breached")]


def test_no_08_ids_are_one_per_event_and_recipient_and_bodies_hold_no_full_tin() -> None:
    """NO-08."""
    events = [
        event(
            "AuthorizationPosted",
            authorization_id="m-1",
            tax_matters=MATTERS,
            receive_notices=True,
            received_at=NOW.isoformat(),
            posted_at=NOW.isoformat(),
        ),
        event(
            "AuthorizationRevoked",
            authorization_id="m-1",
            tax_matters=MATTERS,
            revoked_by="REV-SUPERSEDED",
        ),
        event("AuthorizationRejected", grant_id="tpa-9", **REFUSAL),
    ]
    for e in events:
        first, second = notifications_for(e, NOW), notifications_for(e, NOW)
        assert [n.notification_id for n in first] == [n.notification_id for n in second]
        assert len({n.notification_id for n in first}) == len(first)
        for note in first:
            assert TIN not in note.body
            assert "123-45-6789" not in note.body


@pytest.mark.parametrize(
    ("channel", "taxpayer_channel"),
    [("mail", "mail"), ("fax", "mail"), ("upload", "online_account"), (None, "online_account")],
)
def test_cn_10_taxpayers_who_filed_by_mail_or_fax_are_told_by_mail(
    channel: str | None, taxpayer_channel: str
) -> None:
    """CN-10 (amends NO-02/NO-03): the representative keeps the online channel."""
    posted = event(
        "AuthorizationPosted",
        authorization_id="m-1",
        tax_matters=MATTERS,
        receive_notices=False,
        received_at=NOW.isoformat(),
        posted_at=NOW.isoformat(),
        channel=channel,
    )
    revoked = event(
        "AuthorizationRevoked",
        authorization_id="m-0",
        tax_matters=MATTERS,
        revoked_by="REV-SUPERSEDED",
        channel=channel,
    )
    for e in (posted, revoked):
        channels = {n.recipient: n.channel for n in notifications_for(e, NOW)}
        assert channels["taxpayer"] == taxpayer_channel
        assert channels.get("representative", "tax_pro_account") == "tax_pro_account"


def test_cn_09_a_held_grant_alerts_the_practitioner_of_the_caf_number_only() -> None:
    """CN-09 / NO-06: held for review is a suspicious-activity alert, not a refusal notice."""
    held = event(
        "AuthorizationHeld",
        reason_code="HOLD-VELOCITY",
        reason="Unusually many new authorizations name this CAF number; held for review.",
        rule_id="VA-07",
        stage="validator",
    )
    assert sent(held) == [("representative", "030112345", "suspicious_activity")]


FREE_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=1000) | st.sampled_from(
    [
        "Avery Smith https://irs-refund.example.com/claim",
        "Call 123-45-6789 now",
        "Avery\u202eSmith\x00\n\tCPA",
        "www.pay-irs.info",
        "://x Smith",
        "Avery javascript:alert(1) Smith",
        "x" * 999,
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    name=FREE_TEXT,
    tax_type=st.text(max_size=200),
    periods=st.lists(st.from_regex(r"\A(19|20)[0-9]{2}(-(0[1-9]|1[0-2]))?\Z"), max_size=100),
)
def test_the_taxpayer_fraud_alert_is_always_sent_within_the_size_limit(
    name: str, tax_type: str, periods: list[str]
) -> None:
    """NO-02 cannot be suppressed by a hostile name or a huge form: the taxpayer alert is built
    to fit, keeps the number to call, and carries no control character, link or full TIN."""
    posted = event(
        "AuthorizationPosted",
        representative_name=name,
        authorization_id="m-1",
        tax_matters=[{"tax_type": tax_type, "form_number": "1040", "periods": periods}],
        receive_notices=False,
        received_at=NOW.isoformat(),
        posted_at=NOW.isoformat(),
    )
    [note] = [n for n in notifications_for(posted, NOW) if n.recipient == "taxpayer"]
    assert len(note.body) <= MAX_TEXT
    assert IRS_PHONE in note.body
    assert not re.search(r"[\x00-\x1f\x7f\u202e]", note.body)
    assert "://" not in note.body
    assert "www." not in note.body.lower()
    assert "123-45-6789" not in note.body
    if len(", ".join(periods)) > MAX_MATTERS:  # what does not fit is counted, not dropped
        assert "more periods" in note.body


# Designated Officials -------------------------------------------------------------------------

OFFICIAL = "5d41402abc4b2a76b9719d911017c592"
OTHER_OFFICIAL = "7d793037a0760186574b0282f2f435e7"


def official_event(type_: str, **fields: Any) -> Event:
    return event(type_, form=None, caf_number=None, representative_name=None, **fields)


def letters(e: Event) -> list[tuple[str, str, str]]:
    return [(n.recipient, n.template, n.channel) for n in notifications_for(e, NOW)]


def test_do_05_an_activation_is_told_to_the_business_by_mail_at_its_address_of_record() -> None:
    activated = official_event("DesignatedOfficialActivated", official_id=OFFICIAL)
    assert letters(activated) == [("taxpayer", "do_activated", "mail")]
    (notice,) = notifications_for(activated, NOW)
    assert "EIN ending 6789" in notice.body
    assert "800-829-4933" in notice.body


@pytest.mark.parametrize(
    ("by", "by_official_id", "who"),
    [("official", OTHER_OFFICIAL, "another Designated Official"), ("operator", None, "the IRS")],
)
def test_do_07_a_deactivation_is_told_by_mail_and_says_who_did_it(
    by: str, by_official_id: str | None, who: str
) -> None:
    deactivated = official_event(
        "DesignatedOfficialDeactivated",
        official_id=OFFICIAL,
        by=by,
        by_official_id=by_official_id,
    )
    assert letters(deactivated) == [("taxpayer", "do_deactivated", "mail")]
    assert notifications_for(deactivated, NOW)[0].body.endswith(f"deactivated by {who}.")


@pytest.mark.parametrize(
    ("type_", "template"),
    [("EntityUserAdded", "entity_user_added"), ("EntityUserRemoved", "entity_user_removed")],
)
def test_do_06_authorized_users_are_announced_in_business_tax_account(
    type_: str, template: str
) -> None:
    changed = official_event(type_, user_id=OTHER_OFFICIAL, by_official_id=OFFICIAL)
    assert letters(changed) == [("taxpayer", template, "business_tax_account")]


@pytest.mark.parametrize(
    ("code", "rule", "template", "channel"),
    [
        ("REJ-DO-PIN-LOCKED", "DO-05", "do_pin_locked", "mail"),
        ("REJ-DO-PIN-USED", "DO-05", "do_pin_used", "mail"),
        ("REJ-DO-PIN-EXPIRED", "DO-05", "do_pin_expired", "business_tax_account"),
        ("REJ-DO-PIN-WRONG", "DO-05", "do_refused", "business_tax_account"),
        ("REJ-DO-NOT-OFFICIAL", "DO-06", "do_refused", "business_tax_account"),
    ],
)
def test_do_05_a_locked_or_reused_pin_goes_by_mail_and_other_refusals_online(
    code: str, rule: str, template: str, channel: str
) -> None:
    refused = official_event(
        "DesignatedOfficialRefused",
        act="pin_redeem",
        official_id=OFFICIAL,
        reason_code=code,
        reason="Refused.",
        rule_id=rule,
    )
    assert letters(refused) == [("taxpayer", template, channel)]


def test_do_05_a_wrong_pin_says_how_many_entries_are_left() -> None:
    refused = official_event(
        "DesignatedOfficialRefused",
        act="pin_redeem",
        official_id=OFFICIAL,
        reason_code="REJ-DO-PIN-WRONG",
        reason="The PIN is not the one mailed.",
        rule_id="DO-05",
        attempts_left=3,
    )
    assert "3 wrong entries are left" in notifications_for(refused, NOW)[0].body


def test_do_01_a_refusal_for_a_business_nobody_knows_notifies_nobody() -> None:
    unknown = official_event(
        "DesignatedOfficialRefused",
        act="pin_request",
        tin_last4="",
        reason_code="REJ-ENTITY-UNKNOWN",
        reason="Unknown business.",
        rule_id="DO-01",
    )
    assert notifications_for(unknown, NOW) == []


def test_do_04_the_pin_is_not_in_any_notice_the_notifier_makes() -> None:
    """The CP311 letter with the PIN is intake's; the notifier has nothing to add."""
    issued = official_event(
        "DesignatedOfficialPinIssued",
        official_id=OFFICIAL,
        notice_on="2026-11-20",
        expires_on="2026-12-20",
        attempts_allowed=5,
    )
    assert notifications_for(issued, NOW) == []
