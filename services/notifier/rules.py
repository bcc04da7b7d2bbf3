"""The notifier's pure decisions: which alerts an event causes, to whom, in plain words
(docs/rules.md §4, NO-01 … NO-08). Bodies show at most the last four TIN digits.
"""

from __future__ import annotations

import datetime as dt
import re

from schemas.codes import SUSPICIOUS, ReasonCode
from schemas.events import (
    AuthorizationDeclined,
    AuthorizationExpired,
    AuthorizationHeld,
    AuthorizationNotProcessed,
    AuthorizationPendingApproval,
    AuthorizationPosted,
    AuthorizationRejected,
    AuthorizationRevoked,
    AuthorizationWithdrawn,
    CafNumberAssigned,
    DesignatedOfficialActivated,
    DesignatedOfficialDeactivated,
    DesignatedOfficialPinIssued,
    DesignatedOfficialRefused,
    EntityUserAdded,
    EntityUserRemoved,
    Event,
    RecordedMatter,
    SlaAtRisk,
    SlaBreached,
)
from schemas.ids import notification_id
from schemas.notifications import Notification, Recipient
from schemas.values import redact_numbers

IRS_PHONE = "800-829-1040"
CHANNELS: dict[Recipient, str] = {
    "taxpayer": "online_account",
    "representative": "tax_pro_account",
    "sre": "sre_alerts",
}
FORM_NAMES = {
    "2848": "power of attorney (Form 2848)",
    "8821": "tax information authorization (Form 8821)",
}


def _channel(event: Event, recipient: Recipient) -> str:
    """CN-10: a taxpayer who filed by mail or fax hears back by mail (delivery finds the address
    of record by `recipient_ref`); everyone else through their online account."""
    if recipient == "taxpayer" and getattr(event, "channel", None) in {"mail", "fax"}:
        return "mail"
    return CHANNELS[recipient]


# Free text in an official notice: bounded, one line, no control or direction characters, no links
# (nobody can write phishing text into an IRS alert through a name or a reason).
MAX_NAME = 80
MAX_REASON = 300
MAX_MATTERS = 400
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_TLDS = "com|net|org|gov|io|info|biz|co|us|ru|cn|xyz|top|link|app|site|online"
_LINK = re.compile(
    rf"(?i)(?:\S*://\S*|\b(?:javascript|data|mailto):\S*|\bwww\.\S*|\S+\.(?:{_TLDS})\b\S*|\S+@\S+)"
)


def clean(text: str, limit: int) -> str:
    """Free text fit for a notice: control characters, links and long numbers (a TIN written
    into a name) removed, spaces folded, cut to `limit` characters with an ellipsis."""
    text = redact_numbers(_LINK.sub("[link removed]", _CONTROL.sub(" ", text)))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _matters(matters: list[RecordedMatter], budget: int = MAX_MATTERS) -> str:
    """The matters in at most `budget` characters; what does not fit is counted."""
    shown: list[str] = []
    used, left = 0, sum(len(m.periods) for m in matters)
    for matter in matters:
        words = f"{clean(matter.tax_type, 40)} {clean(matter.form_number, 20)}"
        periods: list[str] = []
        for period in matter.periods:
            piece = clean(period, 16)
            if used + len(words) + len(piece) + 4 > budget:
                break
            periods.append(piece)
            used += len(piece) + 2
        if periods:
            shown.append(f"{words} {', '.join(periods)}")
            used += len(words) + 2
            left -= len(periods)
        if len(periods) < len(matter.periods):
            break
    text = "; ".join(shown)
    return f"{text} and {left} more periods" if left else text


def _form(event: Event) -> str:
    return FORM_NAMES.get(event.form or "", "authorization")


def _who(event: Event) -> str:
    return clean(event.representative_name or "", MAX_NAME) or "A representative"


def _reason(event: AuthorizationRejected | AuthorizationNotProcessed | AuthorizationHeld) -> str:
    return clean(event.reason, MAX_REASON)


def _tin(event: Event) -> str:
    return f"the taxpayer with TIN ending {event.tin_last4}" if event.tin_last4 else "a taxpayer"


def _representative_ref(event: Event) -> str:
    """Representatives are addressed by CAF number; one without is addressed through the grant."""
    return event.caf_number or f"grant:{event.grant_id}"


def _is_tpa_grant(event: Event) -> bool:
    """TPA grants are named by their request id: neither a submission's `<message_id>:<index>`
    nor the message id of a withdrawal or revocation."""
    return event.grant_id != event.message_id and ":" not in event.grant_id


IRS_BUSINESS_PHONE = "800-829-4933"
BUSINESS_CHANNEL = "business_tax_account"
OfficialEvent = (
    DesignatedOfficialPinIssued
    | DesignatedOfficialActivated
    | DesignatedOfficialDeactivated
    | EntityUserAdded
    | EntityUserRemoved
    | DesignatedOfficialRefused
)
# DO-05: the refusals that may mean someone else is trying: the business hears of them by mail
_BY_MAIL = frozenset({ReasonCode.REJ_DO_PIN_LOCKED, ReasonCode.REJ_DO_PIN_USED})
_REFUSAL_TEMPLATES = {
    ReasonCode.REJ_DO_PIN_LOCKED: "do_pin_locked",
    ReasonCode.REJ_DO_PIN_EXPIRED: "do_pin_expired",
    ReasonCode.REJ_DO_PIN_USED: "do_pin_used",
}


def official_notifications(event: OfficialEvent, now: dt.datetime) -> list[Notification]:
    """DO-04 … DO-07: what a business hears of its Designated Officials. A new or removed
    official goes by mail to the address of record (the business learns of it even if the
    person is not who they claim); a locked or reused PIN too; everything else through Business
    Tax Account. A PIN's letter is intake's (the only place the PIN is): nothing here."""
    business = f"the business with EIN ending {event.tin_last4}"
    drafts: list[tuple[str, str, str, str]] = []  # template, channel, subject, body
    if isinstance(event, DesignatedOfficialActivated):
        drafts.append(
            (
                "do_activated",
                "mail",
                "A Designated Official was activated for your business",
                f"A person redeemed the CP311 PIN for {business} and can now act for it online "
                f"as its Designated Official. If nobody at the business asked for this, call "
                f"{IRS_BUSINESS_PHONE}.",
            )
        )
    elif isinstance(event, DesignatedOfficialDeactivated):
        who = "another Designated Official" if event.by == "official" else "the IRS"
        drafts.append(
            (
                "do_deactivated",
                "mail",
                "A Designated Official was deactivated",
                f"A Designated Official of {business} was deactivated by {who}.",
            )
        )
    elif isinstance(event, EntityUserAdded | EntityUserRemoved):
        verb = "added" if isinstance(event, EntityUserAdded) else "removed"
        drafts.append(
            (
                f"entity_user_{verb}",
                BUSINESS_CHANNEL,
                f"An authorized user was {verb}",
                f"Your Designated Official {verb} an authorized user of {business}.",
            )
        )
    elif isinstance(event, DesignatedOfficialRefused) and event.tin_last4:
        left = (
            f" {event.attempts_left} wrong entries are left before it locks."
            if event.attempts_left
            else ""
        )
        drafts.append(
            (
                _REFUSAL_TEMPLATES.get(event.reason_code, "do_refused"),
                "mail" if event.reason_code in _BY_MAIL else BUSINESS_CHANNEL,
                "A Designated Official request was refused",
                f"A request for {business} was refused: {clean(event.reason, MAX_REASON)}{left}",
            )
        )
    return [
        Notification(
            notification_id=notification_id(event.event_id, "taxpayer", event.taxpayer_ref),
            event_id=event.event_id,
            recipient="taxpayer",
            recipient_ref=event.taxpayer_ref,
            template=template,
            channel=channel,
            created_at=now,
            subject=subject,
            body=body,
        )
        for template, channel, subject, body in drafts
    ]


def notifications_for(event: Event, now: dt.datetime) -> list[Notification]:
    """Every alert `event` causes; ids are deterministic per (event, recipient) (NO-08)."""
    if isinstance(event, OfficialEvent):
        return official_notifications(event, now)
    return _authorization_notifications(event, now)


def _authorization_notifications(event: Event, now: dt.datetime) -> list[Notification]:
    """The alerts of a grant's story (NO-01 … NO-07)."""
    drafts: list[tuple[Recipient, str, str, str, str]] = []  # recipient, ref, template, subj, body
    taxpayer: tuple[Recipient, str] = ("taxpayer", event.taxpayer_ref)
    representative: tuple[Recipient, str] = ("representative", _representative_ref(event))
    if isinstance(event, AuthorizationPendingApproval):
        drafts.append(
            (
                *taxpayer,
                "authorization_pending_approval",
                "A tax professional asked for authorization",
                f"{_who(event)} asked for a {_form(event)} on your account. Approve or "
                f"decline it in your Online Account by {event.expires_on}.",
            )
        )
    elif isinstance(event, AuthorizationPosted):
        drafts.append(
            (
                *taxpayer,
                "authorization_posted",
                "A representative now has access to your tax information",
                f"{_who(event)} now holds a {_form(event)} for you (TIN ending "
                f"{event.tin_last4}) on: {_matters(event.tax_matters)}. If you did not "
                f"authorize this, call {IRS_PHONE}.",
            )
        )
    elif isinstance(event, AuthorizationRevoked | AuthorizationWithdrawn):
        verb = "revoked" if isinstance(event, AuthorizationRevoked) else "withdrawn"
        what = _matters(event.tax_matters)
        drafts.append(
            (
                *taxpayer,
                f"authorization_{verb}",
                f"An authorization was {verb}",
                f"The {_form(event)} of {_who(event)} on your account was {verb} for: {what}.",
            )
        )
        drafts.append(
            (
                *representative,
                f"authorization_{verb}",
                f"An authorization was {verb}",
                f"Your {_form(event)} for {_tin(event)} was {verb} for: {what}.",
            )
        )
    elif isinstance(event, AuthorizationRejected | AuthorizationNotProcessed):
        outcome = "rejected" if isinstance(event, AuthorizationRejected) else "not processed"
        body = f"The {_form(event)} for {_tin(event)} was {outcome}: {_reason(event)}"
        revocation_by_taxpayer = event.grant_id == event.message_id and event.caf_number is None
        if revocation_by_taxpayer or _is_tpa_grant(event):
            drafts.append((*taxpayer, "authorization_refused", f"Your request was {outcome}", body))
        if event.reason_code in SUSPICIOUS:  # NO-06, to the practitioner of the CAF number
            drafts.append(
                (
                    *representative,
                    "suspicious_activity",
                    "Unusual activity on your CAF number",
                    f"{body} If this request was not yours, call {IRS_PHONE}.",
                )
            )
        elif not revocation_by_taxpayer:
            drafts.append(
                (*representative, "authorization_refused", f"An authorization was {outcome}", body)
            )
    elif isinstance(event, AuthorizationHeld):  # CN-09, NO-06: held for an operator's review
        drafts.append(
            (
                *representative,
                "suspicious_activity",
                "Unusual activity on your CAF number",
                f"The {_form(event)} for {_tin(event)} is held for review: {_reason(event)} "
                f"If these requests were not yours, call {IRS_PHONE}.",
            )
        )
    elif isinstance(event, AuthorizationDeclined | AuthorizationExpired):
        state = "declined" if isinstance(event, AuthorizationDeclined) else "expired"
        drafts.append(
            (
                *representative,
                f"authorization_{state}",
                f"Your request was {state}",
                f"Your request {clean(event.request_id, 64)} for {_tin(event)} was {state}.",
            )
        )
    elif isinstance(event, CafNumberAssigned):
        drafts.append(
            (
                *representative,
                "caf_number_assigned",
                "Your new CAF number (CP547)",
                f"{_who(event)}, you were assigned CAF number "
                f"{event.caf_number}. Use it on all future authorizations.",
            )
        )
    elif isinstance(event, SlaBreached):
        drafts.append(
            (
                "sre",
                "sre",
                "sla_breached",
                "Posting deadline breached",
                f"Grant {clean(event.grant_id, 64)} is unposted {event.age_hours:.0f} h after it "
                f"became ready at {event.ready_at.isoformat()}.",
            )
        )
    elif isinstance(event, SlaAtRisk):
        pass  # an SRE dashboard concern (metric), not an alert
    return [
        Notification(
            notification_id=notification_id(event.event_id, recipient, ref),
            event_id=event.event_id,
            recipient=recipient,
            recipient_ref=ref,
            template=template,
            channel=_channel(event, recipient),
            created_at=now,
            subject=subject,
            body=body,
        )
        for recipient, ref, template, subject, body in drafts
    ]
