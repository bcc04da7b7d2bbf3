"""Notifier rules NO-01 … NO-08 (docs/rules.md §4), PT-01 … PT-05 (§12), MN-01 … MN-05 (§13)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.base import MAX_TEXT
from schemas.codec import EVENT
from schemas.codes import ReasonCode
from schemas.events import EVENT_TYPES, Event
from schemas.ids import notification_id
from services.notifier.rules import (
    IP_PIN_WARNING,
    IRS_PHONE,
    MAX_MATTERS,
    MAX_NAME,
    notifications_for,
)
from tests.unit.builders import NOW

pytestmark = pytest.mark.unit

TIN = "123456789"
CAF = "030112345"


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
    body = notifications_for(deactivated, NOW)[0].body
    assert body.endswith(f"deactivated by {who}. {IP_PIN_WARNING}")  # PT-05: to a taxpayer


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


# Protected taxpayers (IP PIN program) -------------------------------------------------------

IP_PIN_NUMBER = re.compile(r"\bip[\s_.-]{0,3}pin\b\D{0,20}(?<!\d)\d{6}(?!\d)", re.IGNORECASE)


def held_for_taxpayer(**fields: Any) -> Event:
    values: dict[str, Any] = {
        "reason_code": "HOLD-TAXPAYER-CONFIRMATION",
        "reason": "The taxpayer is protected by the IP PIN program; it waits for them.",
        "rule_id": "PT-01",
        "stage": "validator",
        "confirm_by": "2026-12-20",
    }
    values.update(fields)
    return event("AuthorizationHeld", **values)


def test_pt_01_a_held_protected_authorization_asks_the_taxpayer_by_mail_and_online() -> None:
    """PT-01: two notices to the taxpayer, one per channel, each with an id of its own; they
    name the representative and the form, say why it is held, how and by when to answer, what
    doing nothing means, and that the IRS never asks for an IP PIN."""
    held = held_for_taxpayer()
    notes = [n for n in notifications_for(held, NOW) if n.recipient == "taxpayer"]
    assert sorted(n.channel for n in notes) == ["mail", "online_account"]
    assert {(n.recipient_ref, n.template) for n in notes} == {
        ("a" * 32, "protected_confirmation_requested")
    }
    assert len({n.notification_id for n in notes}) == 2
    assert [n.notification_id for n in notes] == [
        n.notification_id for n in notifications_for(held, NOW) if n.recipient == "taxpayer"
    ]
    for note in notes:
        assert "Avery Smith (CAF number 030112345)" in note.body
        assert "power of attorney (Form 2848)" in note.body
        assert "protected by the IP PIN program" in note.body
        assert "confirm or refuse it in your Online Account by 2026-12-20" in note.body
        assert "If you do nothing, it will not take effect." in note.body
        assert note.body.endswith(IP_PIN_WARNING)
        assert TIN not in note.body


def test_pt_02_a_held_8821_naming_an_unregistered_designee_names_no_caf_number() -> None:
    """PT-02: the designee has no CAF number; the taxpayer is still asked on both channels
    and the designee is addressed through the grant."""
    held = held_for_taxpayer(rule_id="PT-02", form="8821", caf_number=None)
    assert sorted(sent(held)) == [
        ("representative", "grant:m-1:0", "authorization_awaiting_taxpayer"),
        ("taxpayer", "a" * 32, "protected_confirmation_requested"),
        ("taxpayer", "a" * 32, "protected_confirmation_requested"),
    ]
    [note, *_] = [n for n in notifications_for(held, NOW) if n.recipient == "taxpayer"]
    assert "tax information authorization (Form 8821)" in note.body
    assert "naming Avery Smith." in note.body
    assert "CAF number" not in note.body


def test_pt_01_the_representative_learns_only_that_the_authorization_awaits_the_taxpayer() -> None:
    """PT-01: no refusal and no fraud alert; the last four TIN digits and the due date, as
    other representative notices show, and nothing of the taxpayer's protection."""
    [note] = [n for n in notifications_for(held_for_taxpayer(), NOW) if n.recipient != "taxpayer"]
    assert (note.recipient, note.recipient_ref) == ("representative", "030112345")
    assert (note.template, note.channel) == ("authorization_awaiting_taxpayer", "tax_pro_account")
    assert note.body == (
        "Your power of attorney (Form 2848) for the taxpayer with TIN ending 6789 awaits the "
        "taxpayer's confirmation, due by 2026-12-20. It takes effect only if the taxpayer "
        "confirms it."
    )
    assert "IP PIN" not in note.body


@pytest.mark.parametrize(
    ("code", "rule", "state"),
    [
        ("REJ-PT-REFUSED", "PT-03", "refused by the taxpayer"),
        ("REJ-PT-NOT-CONFIRMED", "PT-04", "not confirmed by the taxpayer in time"),
    ],
)
def test_pt_03_pt_04_a_refused_or_unconfirmed_authorization_alerts_the_practitioner_and_sres(
    code: str, rule: str, state: str
) -> None:
    """PT-03, PT-04: a NO-06 fraud alert to the practitioner of the CAF number instead of the
    plain NO-04 refusal (one notice per event, recipient and channel), and an alert to the
    SREs; every id distinct."""
    refused = event(
        "AuthorizationRejected", stage="validator", reason_code=code, reason="Ended.", rule_id=rule
    )
    notes = notifications_for(refused, NOW)
    assert sent(refused) == [
        ("representative", "030112345", "suspicious_activity"),
        ("sre", "sre", "protected_authorization_refused"),
    ]
    assert len({n.notification_id for n in notes}) == 2
    alert, sre = notes
    assert "was rejected: Ended." in alert.body
    assert alert.body.endswith(f"If this request was not yours, call {IRS_PHONE}.")
    assert (alert.channel, sre.channel) == ("tax_pro_account", "sre_alerts")
    assert state in sre.body
    assert "CAF number 030112345" in sre.body
    assert "6789" not in sre.body


def test_pt_03_a_refused_tpa_grant_also_tells_the_taxpayer_with_the_warning() -> None:
    """PT-03 with NO-04: the taxpayer of a TPA grant hears of its end as before."""
    refused = event(
        "AuthorizationRejected",
        grant_id="tpa-9",
        reason_code="REJ-PT-REFUSED",
        reason="Refused.",
        rule_id="PT-03",
    )
    recipients = sorted(r for r, _, _ in sent(refused))
    assert recipients == ["representative", "sre", "taxpayer"]
    [note] = [n for n in notifications_for(refused, NOW) if n.recipient == "taxpayer"]
    assert note.body.endswith(IP_PIN_WARNING)


@pytest.mark.parametrize(
    ("code", "rule"), [("REJ-PT-NOT-HELD", "PT-03"), ("REJ-IP-PIN-COLLECTED", "PT-05")]
)
def test_pt_03_pt_05_a_refused_answer_or_ip_pin_message_tells_only_its_taxpayer(
    code: str, rule: str
) -> None:
    """PT-03 (an answer for nothing held) and PT-05 (a message carrying an IP PIN) name the
    message as the grant and no representative: the taxpayer hears of it (NO-04), warned."""
    refused = event(
        "AuthorizationRejected",
        grant_id="pc-1",
        message_id="pc-1",
        caf_number=None,
        representative_name=None,
        reason_code=code,
        reason="The IRS never asks for an IP PIN.",
        rule_id=rule,
    )
    [note] = notifications_for(refused, NOW)
    assert (note.recipient, note.template) == ("taxpayer", "authorization_refused")
    assert note.body.endswith(IP_PIN_WARNING)


def test_cn_09_a_velocity_hold_is_unchanged_by_protected_taxpayers() -> None:
    """CN-09 / NO-06: `HOLD-VELOCITY` still gives one suspicious-activity alert, with the id of
    (event, representative) and the same words; nothing to the taxpayer."""
    held = event(
        "AuthorizationHeld",
        reason_code="HOLD-VELOCITY",
        reason="Held.",
        rule_id="VA-07",
        stage="validator",
    )
    [note] = notifications_for(held, NOW)
    assert note.notification_id == notification_id("e-AuthorizationHeld", "representative", CAF)
    assert (note.template, note.channel) == ("suspicious_activity", "tax_pro_account")
    assert note.body == (
        "The power of attorney (Form 2848) for the taxpayer with TIN ending 6789 is held for "
        f"review: Held. If these requests were not yours, call {IRS_PHONE}."
    )


def test_pt_05_six_digits_next_to_ip_pin_in_free_text_are_masked() -> None:
    """PT-05: a name writing an IP PIN, or cut to six digits next to the words, is masked."""
    for name in ("Avery IP PIN: 493817", "a" * 65 + " IP PIN 12345678"):
        assert len(name) <= MAX_NAME + 1
        for note in notifications_for(held_for_taxpayer(representative_name=name), NOW):
            assert not IP_PIN_NUMBER.search(note.body)
    [note, *_] = notifications_for(held_for_taxpayer(representative_name="IP PIN 493817"), NOW)
    assert "IP PIN ******" in note.body


# Suspected misuse of a CAF number (MN-01 … MN-05) -------------------------------------------

EVIDENCE: dict[str, Any] = {
    "window_hours": 24,
    "new_grants": 31,
    "distinct_taxpayers": 30,
    "form_8821": 29,
    "refusals": 0,
    "taxpayer_revocations": 0,
    "baseline_per_day": 1.5,
}


def misuse_fields(
    rule: str, signal: str, evidence: dict[str, Any], observed: float = 30, threshold: float = 20
) -> dict[str, Any]:
    """A `CafMisuseSuspected`'s own fields; the tipping event's taxpayer is named only for
    tracing, and its TIN is not there at all."""
    return {
        "caf_number": CAF,
        "tin_last4": "",
        "stage": "caf_poster",
        "rule_id": rule,
        "signal": signal,
        "observed": observed,
        "threshold": threshold,
        "evidence": evidence,
    }


def misuse(rule: str, signal: str, evidence: dict[str, Any], **fields: Any) -> Event:
    return event("CafMisuseSuspected", **{**misuse_fields(rule, signal, evidence), **fields})


MISUSE_CASES = [
    pytest.param(
        "MN-01",
        "burst",
        EVIDENCE,
        "31 new authorizations for 30 different taxpayers in 24 hours, against your usual 1.5 "
        "a day",
        id="MN-01-burst",
    ),
    pytest.param(
        "MN-02",
        "transcript_share",
        {**EVIDENCE, "window_hours": 168, "baseline_per_day": None},
        "29 of 31 new authorizations in 7 days were tax information authorizations (Form 8821)",
        id="MN-02-transcript-share",
    ),
    pytest.param(
        "MN-03",
        "refusals",
        {**EVIDENCE, "window_hours": 168, "refusals": 6},
        "6 authorizations naming your CAF number were refused in 7 days because the name did "
        "not match your CAF record or the number was not in good standing",
        id="MN-03-refusals",
    ),
    pytest.param(
        "MN-04",
        "taxpayer_revocations",
        {**EVIDENCE, "window_hours": 720, "taxpayer_revocations": 3},
        "in 30 days, 3 authorizations given to you were revoked by the taxpayer less than 30 "
        "days after being given",
        id="MN-04-taxpayer-revocations",
    ),
    pytest.param(
        "MN-05",
        "first_use_burst",
        {**EVIDENCE, "new_grants": 12, "distinct_taxpayers": 12, "idle_days": 400},
        "12 new authorizations for 12 different taxpayers in 24 hours, the first use of your "
        "CAF number after 400 days without any",
        id="MN-05-first-use-after-idle",
    ),
    pytest.param(
        "MN-05",
        "first_use_burst",
        {**EVIDENCE, "new_grants": 1, "distinct_taxpayers": 1, "baseline_per_day": None},
        "1 new authorization for 1 different taxpayer in 24 hours, the first use of your CAF "
        "number right after it was assigned",
        id="MN-05-first-use-after-assignment",
    ),
]


@pytest.mark.parametrize(("rule", "signal", "evidence", "seen"), MISUSE_CASES)
def test_mn_01_a_suspected_misuse_alerts_the_practitioner_and_the_sres_and_never_the_taxpayer(
    rule: str, signal: str, evidence: dict[str, Any], seen: str
) -> None:
    """MN-01 … MN-05: the practitioner of the CAF number is told in plain words what was seen,
    that the IRS is reviewing it, what to do and whom to call; the SREs get the rule, signal,
    figures, counts and the command to hold the number. The taxpayer of the event that tipped
    the monitor is neither told nor named; each recipient's id is its own and deterministic."""
    suspected = misuse(rule, signal, evidence, taxpayer_ref="b" * 32, tin_last4="")
    notes = notifications_for(suspected, NOW)
    assert sent(suspected) == [
        ("representative", CAF, "caf_misuse_suspected"),
        ("sre", "sre", "caf_misuse_suspected"),
    ]
    practitioner, sre = notes
    assert (practitioner.channel, sre.channel) == ("tax_pro_account", "sre_alerts")
    assert [n.notification_id for n in notes] == [
        notification_id("e-CafMisuseSuspected", "representative", CAF),
        notification_id("e-CafMisuseSuspected", "sre", "sre"),
    ]
    assert [n.notification_id for n in notes] == [
        n.notification_id for n in notifications_for(suspected, NOW)
    ]
    assert practitioner.subject == "Unusual activity on your CAF number"
    assert seen in practitioner.body
    assert "The IRS is reviewing it." in practitioner.body
    assert "Power of Attorney" in practitioner.body
    assert "withdraw those for clients you no longer represent" in practitioner.body
    assert practitioner.body.endswith(f"If these authorizations were not yours, call {IRS_PHONE}.")
    assert f"CAF number {CAF}: {rule} {signal}, observed 30 against threshold 20." in sre.body
    assert f"{evidence['new_grants']} new grants" in sre.body
    assert f"{evidence['distinct_taxpayers']} distinct taxpayers" in sre.body
    assert f"{evidence['refusals']} refusals" in sre.body
    assert f"{evidence['taxpayer_revocations']} taxpayer revocations" in sre.body
    assert sre.body.endswith(f"`cafctl misuse hold {CAF}`.")
    assert sre.subject == f"Suspected misuse of CAF number {CAF} ({rule})"
    for note in notes:
        assert "b" * 32 not in note.body + note.subject
        assert TIN not in note.body
        assert "6789" not in note.body
        assert "Avery Smith" not in note.body
        assert "m-1" not in note.body
        assert IP_PIN_WARNING not in note.body
        assert len(note.body) <= MAX_TEXT


def test_mn_01_a_burst_without_history_names_no_usual_rate() -> None:
    """MN-01: a number with no grants in the 30 days before has no usual rate to compare."""
    burst = misuse("MN-01", "burst", {**EVIDENCE, "baseline_per_day": None})
    practitioner, sre = notifications_for(burst, NOW)
    assert "different taxpayers in 24 hours. The IRS is reviewing it." in practitioner.body
    assert "your usual" not in practitioner.body
    assert "baseline none" in sre.body


def test_mn_02_the_sre_alert_gives_the_share_and_its_threshold() -> None:
    """MN-02: the observed share of 8821s and the threshold it crossed, as figures."""
    share = misuse(
        "MN-02",
        "transcript_share",
        {**EVIDENCE, "window_hours": 168},
        observed=0.935,
        threshold=0.8,
    )
    _, sre = notifications_for(share, NOW)
    assert "observed 0.935 against threshold 0.8." in sre.body
    assert "Over 168 h: 31 new grants, 30 distinct taxpayers, 29 Form 8821," in sre.body
    assert "baseline 1.5/day" in sre.body


SIGNAL_RULES = {
    "burst": "MN-01",
    "transcript_share": "MN-02",
    "refusals": "MN-03",
    "taxpayer_revocations": "MN-04",
    "first_use_burst": "MN-05",
}
COUNT = st.integers(min_value=0, max_value=10**60)
FIGURE = st.floats(allow_nan=False, allow_infinity=False, min_value=0)


@settings(max_examples=200, deadline=None)
@given(
    signal=st.sampled_from(sorted(SIGNAL_RULES)),
    counts=st.fixed_dictionaries(
        {
            "window_hours": st.integers(min_value=1, max_value=10**60),
            "new_grants": COUNT,
            "distinct_taxpayers": COUNT,
            "form_8821": COUNT,
            "refusals": COUNT,
            "taxpayer_revocations": COUNT,
            "baseline_per_day": st.none() | FIGURE,
            "idle_days": st.none() | COUNT,
        }
    ),
    observed=FIGURE,
    threshold=FIGURE,
)
def test_mn_01_mn_05_any_counts_give_both_alerts_within_the_size_limit(
    signal: str, counts: dict[str, Any], observed: float, threshold: float
) -> None:
    """MN-01 … MN-05: however large the counts, both alerts are made, fit the size limit and
    keep what matters most: the number to call, and the command to hold the number."""
    suspected = misuse(SIGNAL_RULES[signal], signal, counts, observed=observed, threshold=threshold)
    practitioner, sre = notifications_for(suspected, NOW)
    for note in (practitioner, sre):
        assert len(note.body) <= MAX_TEXT
        assert not IP_PIN_NUMBER.search(note.body)
    assert practitioner.body.endswith(f"call {IRS_PHONE}.")
    assert sre.body.endswith(f"`cafctl misuse hold {CAF}`.")


HOSTILE = FREE_TEXT | st.sampled_from(
    [
        "IP PIN: 123456",
        "ip_pin 654321",
        "Ip-Pin is 123456 and 654321",
        "your IP PIN 1234567",
        "x" * 60 + " IP PIN 12345678",
        "IP PIN " + "1" * 6 + "\n" + "2" * 6,
    ]
)
REASONED = {
    "AuthorizationRejected": [c.value for c in ReasonCode if not c.startswith(("NP-", "HOLD-"))],
    "AuthorizationNotProcessed": [c.value for c in ReasonCode if c.startswith("NP-")],
    "AuthorizationHeld": ["HOLD-VELOCITY", "HOLD-TAXPAYER-CONFIRMATION"],
    "PostingDelayed": ["DELAY-EVIDENCE-UNSTORED"],
    "DesignatedOfficialRefused": [c.value for c in ReasonCode if c.startswith("REJ-DO-")],
}


def any_event(type_: str, text: str, code: str, grant: tuple[str, str, str | None]) -> Event:
    """An event of `type_` with `text` in every free-text field it has."""
    message_id, grant_id, caf = grant
    matters = [{"tax_type": text, "form_number": "1040", "periods": ["2024", "2025-06"]}]
    reasoned = {"reason_code": code, "reason": text, "rule_id": "VA-01"}
    extra: dict[str, dict[str, Any]] = {
        "AuthorizationPendingApproval": {"request_id": text, "expires_on": "2026-12-20"},
        "AuthorizationPosted": {
            "authorization_id": "m-1",
            "tax_matters": matters,
            "receive_notices": True,
            "received_at": NOW.isoformat(),
            "posted_at": NOW.isoformat(),
            "channel": "mail",
        },
        "AuthorizationRejected": reasoned,
        "AuthorizationNotProcessed": reasoned,
        "AuthorizationHeld": {**reasoned, "confirm_by": "2026-12-20"},
        "AuthorizationDeclined": {"request_id": text},
        "AuthorizationExpired": {"request_id": text},
        "AuthorizationRevoked": {
            "authorization_id": "m-0",
            "tax_matters": matters,
            "revoked_by": "REV-BY-TAXPAYER",
        },
        "AuthorizationWithdrawn": {"authorization_id": "m-0", "tax_matters": matters},
        "CafNumberAssigned": {"caf_number": "900000001"},
        "PostingDelayed": {**reasoned, "waiting_since": NOW.isoformat(), "attempts": 4},
        "SlaAtRisk": {"ready_at": NOW.isoformat(), "age_hours": 24.0},
        "SlaBreached": {"ready_at": NOW.isoformat(), "age_hours": 48.0},
        "CafMisuseSuspected": misuse_fields("MN-01", "burst", EVIDENCE),
    }
    official: dict[str, dict[str, Any]] = {
        "DesignatedOfficialPinIssued": {
            "official_id": OFFICIAL,
            "notice_on": "2026-11-20",
            "expires_on": "2026-12-20",
            "attempts_allowed": 5,
        },
        "DesignatedOfficialActivated": {"official_id": OFFICIAL},
        "DesignatedOfficialDeactivated": {"official_id": OFFICIAL, "by": "operator"},
        "EntityUserAdded": {"user_id": OTHER_OFFICIAL, "by_official_id": OFFICIAL},
        "EntityUserRemoved": {"user_id": OTHER_OFFICIAL, "by_official_id": OFFICIAL},
        "DesignatedOfficialRefused": {
            **reasoned,
            "act": "pin_redeem",
            "official_id": OFFICIAL,
            "attempts_left": 2,
        },
    }
    if type_ in official:
        return official_event(type_, **official[type_])
    fields = {"message_id": message_id, "grant_id": grant_id, "caf_number": caf}
    return event(type_, **{**fields, "representative_name": text, **extra[type_]})


@st.composite
def events_of_every_type(draw: st.DrawFn) -> Event:
    type_ = draw(st.sampled_from([t.__name__ for t in EVENT_TYPES]))
    code = draw(st.sampled_from(REASONED.get(type_, ["REJ-SCHEMA"])))
    grant = draw(
        st.sampled_from(
            [
                ("m-1", "m-1:0", CAF),  # a form's grant
                ("m-1", "m-1:0", None),  # a form's grant for an unregistered designee
                ("r-1", "r-1", None),  # a revocation, or an answer, by the taxpayer
                ("t-1", "tpa-9", CAF),  # a Tax Pro Account grant
            ]
        )
    )
    return any_event(type_, draw(HOSTILE), code, grant)


@settings(max_examples=400, deadline=None)
@given(events_of_every_type())
def test_pt_05_no_notice_of_any_event_writes_an_ip_pin_and_every_taxpayer_is_warned(
    e: Event,
) -> None:
    """PT-05, NO-08: for every event type, whatever its free text says, no subject or body
    writes six digits next to "IP PIN"; every notice to a taxpayer ends with the warning and
    stays within the size limit; ids are distinct and deterministic."""
    notes = notifications_for(e, NOW)
    if e.type == "CafMisuseSuspected":  # MN-01 … MN-05: never told to the taxpayer
        assert "taxpayer" not in {n.recipient for n in notes}
    for note in notes:
        assert not IP_PIN_NUMBER.search(note.subject)
        assert not IP_PIN_NUMBER.search(note.body)
        assert len(note.body) <= MAX_TEXT
        if note.recipient == "taxpayer":
            assert note.body.endswith(IP_PIN_WARNING)
    assert len({n.notification_id for n in notes}) == len(notes)
    assert [n.notification_id for n in notes] == [
        n.notification_id for n in notifications_for(e, NOW)
    ]
