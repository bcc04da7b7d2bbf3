"""The notifier's pure decisions: which alerts an event causes, to whom, in plain words
(docs/rules.md §4, NO-01 … NO-08; §12, PT-01 … PT-05; §13, MN-01 … MN-05). Bodies show at most
the last four TIN digits; every notice to a taxpayer says the IRS never asks for an IP PIN, and no
notice writes six digits next to the words "IP PIN" (PT-05).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import NamedTuple

from schemas.base import MAX_TEXT
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
    CafMisuseSuspected,
    CafNumberAssigned,
    DesignatedOfficialActivated,
    DesignatedOfficialDeactivated,
    DesignatedOfficialPinIssued,
    DesignatedOfficialRefused,
    EntityUserAdded,
    EntityUserRemoved,
    Event,
    RecordedMatter,
    SlaBreached,
)
from schemas.ids import notification_id
from schemas.ip_pin import IP_PIN_TEXT, SIX_DIGITS  # PT-05: what every notice masks
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
# PT-05: said in every notice to a taxpayer, after the body
IP_PIN_WARNING = (
    "The IRS will never ask you for your IP PIN; do not give it to anyone who asks for it."
)
# PT-03, PT-04: a protected taxpayer refused, or never confirmed, an authorization naming a
# practitioner: like NO-06's `SUSPICIOUS`, the practitioner is alerted (and the SREs too)
PROTECTED_REFUSALS = frozenset({ReasonCode.REJ_PT_REFUSED, ReasonCode.REJ_PT_NOT_CONFIRMED})


class Addressee(NamedTuple):
    """Who a notice goes to: the kind of recipient and their pseudonymous reference."""

    recipient: Recipient
    ref: str


class Draft(NamedTuple):
    """One notice before it is made a `Notification`. `channel` None: the recipient's channel
    for the event (CN-10). `qualifier`: set on a further notice of one event to the same
    recipient (PT-01's second channel, PT-03's fraud alert), so its id differs (NO-08)."""

    to: Addressee
    template: str
    subject: str
    body: str
    channel: str | None = None
    qualifier: str = ""


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
    to_business = _taxpayer(event)
    drafts: list[Draft] = []
    if isinstance(event, DesignatedOfficialActivated):
        drafts.append(
            Draft(
                to_business,
                "do_activated",
                "A Designated Official was activated for your business",
                f"A person redeemed the CP311 PIN for {business} and can now act for it online "
                f"as its Designated Official. If nobody at the business asked for this, call "
                f"{IRS_BUSINESS_PHONE}.",
                channel="mail",
            )
        )
    elif isinstance(event, DesignatedOfficialDeactivated):
        who = "another Designated Official" if event.by == "official" else "the IRS"
        drafts.append(
            Draft(
                to_business,
                "do_deactivated",
                "A Designated Official was deactivated",
                f"A Designated Official of {business} was deactivated by {who}.",
                channel="mail",
            )
        )
    elif isinstance(event, EntityUserAdded | EntityUserRemoved):
        verb = "added" if isinstance(event, EntityUserAdded) else "removed"
        drafts.append(
            Draft(
                to_business,
                f"entity_user_{verb}",
                f"An authorized user was {verb}",
                f"Your Designated Official {verb} an authorized user of {business}.",
                channel=BUSINESS_CHANNEL,
            )
        )
    elif isinstance(event, DesignatedOfficialRefused) and event.tin_last4:
        left = (
            f" {event.attempts_left} wrong entries are left before it locks."
            if event.attempts_left
            else ""
        )
        drafts.append(
            Draft(
                to_business,
                _REFUSAL_TEMPLATES.get(event.reason_code, "do_refused"),
                "A Designated Official request was refused",
                f"A request for {business} was refused: {clean(event.reason, MAX_REASON)}{left}",
                channel="mail" if event.reason_code in _BY_MAIL else BUSINESS_CHANNEL,
            )
        )
    return _notifications(event, drafts, now)


def notifications_for(event: Event, now: dt.datetime) -> list[Notification]:
    """Every alert `event` causes; ids are deterministic per (event, recipient) (NO-08), and a
    further notice of one event to the same recipient has an id of its own (PT-01, PT-03)."""
    if isinstance(event, OfficialEvent):
        return official_notifications(event, now)
    return _notifications(event, drafts_for(event), now)


@functools.singledispatch
def drafts_for(event: Event) -> list[Draft]:
    """The alerts of an event, by its type (the builders registered below: NO-01 … NO-07,
    PT-01 … PT-05, MN-01 … MN-05). A type with none alerts nobody: `SlaAtRisk` is an SRE
    dashboard concern (a metric), `PostingDelayed` is not terminal."""
    return []


@drafts_for.register
def _pending_drafts(event: AuthorizationPendingApproval) -> list[Draft]:
    """NO-01: the taxpayer is asked to approve a Tax Pro Account request."""
    return [
        Draft(
            _taxpayer(event),
            "authorization_pending_approval",
            "A tax professional asked for authorization",
            f"{_who(event)} asked for a {_form(event)} on your account. Approve or "
            f"decline it in your Online Account by {event.expires_on}.",
        )
    ]


@drafts_for.register
def _posted_drafts(event: AuthorizationPosted) -> list[Draft]:
    """NO-02: the taxpayer hears that a representative now has access."""
    return [
        Draft(
            _taxpayer(event),
            "authorization_posted",
            "A representative now has access to your tax information",
            f"{_who(event)} now holds a {_form(event)} for you (TIN ending "
            f"{event.tin_last4}) on: {_matters(event.tax_matters)}. If you did not "
            f"authorize this, call {IRS_PHONE}.",
        )
    ]


@drafts_for.register
def _request_end_drafts(event: AuthorizationDeclined | AuthorizationExpired) -> list[Draft]:
    """NO-04: the representative hears that a request was declined or expired."""
    state = "declined" if isinstance(event, AuthorizationDeclined) else "expired"
    return [
        Draft(
            _representative(event),
            f"authorization_{state}",
            f"Your request was {state}",
            f"Your request {clean(event.request_id, 64)} for {_tin(event)} was {state}.",
        )
    ]


@drafts_for.register
def _number_drafts(event: CafNumberAssigned) -> list[Draft]:
    """NO-05: a new CAF number (CP547)."""
    return [
        Draft(
            _representative(event),
            "caf_number_assigned",
            "Your new CAF number (CP547)",
            f"{_who(event)}, you were assigned CAF number "
            f"{event.caf_number}. Use it on all future authorizations.",
        )
    ]


@drafts_for.register
def _breach_drafts(event: SlaBreached) -> list[Draft]:
    """NO-07: a breached posting deadline, to the SREs."""
    return [
        Draft(
            Addressee("sre", "sre"),
            "sla_breached",
            "Posting deadline breached",
            f"Grant {clean(event.grant_id, 64)} is unposted {event.age_hours:.0f} h after "
            f"it became ready at {event.ready_at.isoformat()}.",
        )
    ]


@drafts_for.register
def _ended_drafts(event: AuthorizationRevoked | AuthorizationWithdrawn) -> list[Draft]:
    """NO-03: the taxpayer and the representative hear of a revocation or withdrawal."""
    verb = "revoked" if isinstance(event, AuthorizationRevoked) else "withdrawn"
    what = _matters(event.tax_matters)
    return [
        Draft(
            _taxpayer(event),
            f"authorization_{verb}",
            f"An authorization was {verb}",
            f"The {_form(event)} of {_who(event)} on your account was {verb} for: {what}.",
        ),
        Draft(
            _representative(event),
            f"authorization_{verb}",
            f"An authorization was {verb}",
            f"Your {_form(event)} for {_tin(event)} was {verb} for: {what}.",
        ),
    ]


@drafts_for.register
def _refusal_drafts(event: AuthorizationRejected | AuthorizationNotProcessed) -> list[Draft]:
    """NO-04 to the representative (and the taxpayer of a TPA grant or of a revocation);
    NO-06 instead for a `SUSPICIOUS` code; PT-03, PT-04: alerts besides."""
    drafts: list[Draft] = []
    outcome = "rejected" if isinstance(event, AuthorizationRejected) else "not processed"
    body = f"The {_form(event)} for {_tin(event)} was {outcome}: {_reason(event)}"
    revocation_by_taxpayer = event.grant_id == event.message_id and event.caf_number is None
    if revocation_by_taxpayer or _is_tpa_grant(event):
        drafts.append(
            Draft(_taxpayer(event), "authorization_refused", f"Your request was {outcome}", body)
        )
    if event.reason_code in SUSPICIOUS | PROTECTED_REFUSALS:  # NO-06, to the CAF number's
        drafts.append(_fraud_alert(event, body))  # practitioner (PT-03, PT-04 too)
    elif not revocation_by_taxpayer:
        drafts.append(
            Draft(
                _representative(event),
                "authorization_refused",
                f"An authorization was {outcome}",
                body,
            )
        )
    if event.reason_code in PROTECTED_REFUSALS:
        drafts.extend(_protected_refusal_drafts(event, body))
    return drafts


def _fraud_alert(
    event: Event, facts: str, requests: str = "this request was", qualifier: str = ""
) -> Draft:
    """NO-06: the practitioner of the CAF number is told of unusual activity on it, and whom
    to call if the `requests` were not theirs."""
    return Draft(
        _representative(event),
        "suspicious_activity",
        "Unusual activity on your CAF number",
        f"{facts} If {requests} not yours, call {IRS_PHONE}.",
        qualifier=qualifier,
    )


@drafts_for.register
def _held_drafts(event: AuthorizationHeld) -> list[Draft]:
    """PT-01, PT-02: held for the protected taxpayer's confirmation; otherwise CN-09, NO-06:
    held for an operator's review, a suspicious-activity alert to the practitioner."""
    if event.reason_code == ReasonCode.HOLD_TAXPAYER_CONFIRMATION:
        return _protected_hold_drafts(event)
    return [
        _fraud_alert(
            event,
            f"The {_form(event)} for {_tin(event)} is held for review: {_reason(event)}",
            "these requests were",
        )
    ]


# Suspected misuse of a CAF number (MN-01 … MN-05) -------------------------------------------

# The room the observation takes in a notice (its numbers are unbounded); the rest is fixed text
MAX_OBSERVATION = 600
MISUSE_HOLD_COMMAND = "cafctl misuse hold"


@drafts_for.register
def _misuse_drafts(event: CafMisuseSuspected) -> list[Draft]:
    """MN-01 … MN-05: the practitioner of the CAF number is told what was seen, that the IRS is
    reviewing it, what to do and whom to call; the SREs get the rule, figures and counts. The
    taxpayer of the event that tipped the monitor is never told (the event is not about them),
    and no notice names them: nothing of `taxpayer_ref`, `tin_last4`, `grant_id` or the name
    on the form that tipped it is written."""
    caf = event.caf_number
    seen = clean(_misuse_seen(event), MAX_OBSERVATION)
    return [
        Draft(
            Addressee("representative", caf),
            "caf_misuse_suspected",
            "Unusual activity on your CAF number",
            f"We saw unusual activity on your CAF number: {seen}. The IRS is reviewing it. "
            f"Please review the Power of Attorney and tax information authorization "
            f"submissions (Forms 2848 and 8821) made with your CAF number, and withdraw those "
            f"for clients you no longer represent. If these authorizations were not yours, call "
            f"{IRS_PHONE}.",
        ),
        Draft(
            Addressee("sre", "sre"),
            "caf_misuse_suspected",
            f"Suspected misuse of CAF number {caf} ({event.rule_id})",
            f"CAF number {caf}: {event.rule_id} {event.signal}, "
            f"{clean(_misuse_figures(event), MAX_OBSERVATION)}. An operator can mark the number "
            f"pending review with `{MISUSE_HOLD_COMMAND} {caf}`.",
        ),
    ]


def _misuse_seen(event: CafMisuseSuspected) -> str:
    """What the monitor saw, in plain words, per signal."""
    ev = event.evidence
    window = _window(ev.window_hours)
    grants = f"{_count(ev.new_grants, 'new authorization')} for "
    grants += f"{_count(ev.distinct_taxpayers, 'different taxpayer')} in {window}"
    if event.signal == "burst":
        usual = "0" if ev.baseline_per_day is None else _figure(ev.baseline_per_day, 1)
        return grants + (f", against your usual {usual} a day" if usual != "0" else "")
    if event.signal == "transcript_share":
        return (
            f"{ev.form_8821:,} of {_count(ev.new_grants, 'new authorization')} in {window} "
            f"{_were(ev.form_8821)} tax information authorizations (Form 8821), which give "
            f"access to tax transcripts"
        )
    if event.signal == "refusals":
        return (
            f"{_count(ev.refusals, 'authorization')} naming your CAF number "
            f"{_were(ev.refusals)} refused in {window} because the name did not match your CAF "
            f"record or the number was not in good standing"
        )
    if event.signal == "taxpayer_revocations":
        return (
            f"in {window}, {_count(ev.taxpayer_revocations, 'authorization')} given to you "
            f"{_were(ev.taxpayer_revocations)} revoked by the taxpayer less than 30 days after "
            f"being given"
        )
    since = (
        f"after {_count(ev.idle_days, 'day')} without any"
        if ev.idle_days is not None
        else "right after it was assigned"
    )
    return f"{grants}, the first use of your CAF number {since}"


def _misuse_figures(event: CafMisuseSuspected) -> str:
    """The figure, its threshold and the evidence, for the SREs."""
    ev = event.evidence
    usual = "none" if ev.baseline_per_day is None else f"{_figure(ev.baseline_per_day)}/day"
    idle = "" if ev.idle_days is None else f", idle {ev.idle_days:,} days before"
    return (
        f"observed {_figure(event.observed)} against threshold {_figure(event.threshold)}. "
        f"Over {ev.window_hours:,} h: {ev.new_grants:,} new grants, {ev.distinct_taxpayers:,} "
        f"distinct taxpayers, {ev.form_8821:,} Form 8821, {ev.refusals:,} refusals (name "
        f"mismatch or not in good standing), {ev.taxpayer_revocations:,} taxpayer revocations "
        f"of grants under 30 days; baseline {usual}{idle}"
    )


def _window(hours: int) -> str:
    return _count(hours // 24, "day") if hours > 24 and hours % 24 == 0 else _count(hours, "hour")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _were(n: int) -> str:
    return "was" if n == 1 else "were"


def _figure(x: float, places: int = 3) -> str:
    """`x` in plain digits: no trailing zeros, thousands grouped (no long digit runs)."""
    text = f"{x:,.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


# Protected taxpayers (PT-01 … PT-05) ---------------------------------------------------------


def _protected_hold_drafts(event: AuthorizationHeld) -> list[Draft]:
    """PT-01, PT-02: the taxpayer is asked to confirm or refuse, by mail (at the address of
    record) and in Online Account; the representative learns that the authorization waits,
    and nothing of why (the taxpayer's protection is theirs)."""
    by = f"by {event.confirm_by.isoformat()}" if event.confirm_by else "within 30 days"
    caf = f" (CAF number {event.caf_number})" if event.caf_number else ""
    named = clean(event.representative_name or "", MAX_NAME) or "a representative"
    yours = f" for you (TIN ending {event.tin_last4})" if event.tin_last4 else ""
    subject = "Confirm or refuse an authorization on your account"
    body = (
        f"We received a {_form(event)}{yours} naming {named}{caf}. It is held because you are "
        f"protected by the IP PIN program: confirm or refuse it in your Online Account {by}. "
        f"If you do nothing, it will not take effect."
    )
    template = "protected_confirmation_requested"
    return [
        Draft(_taxpayer(event), template, subject, body, channel=CHANNELS["taxpayer"]),
        Draft(_taxpayer(event), template, subject, body, channel="mail", qualifier="mail"),
        Draft(
            _representative(event),
            "authorization_awaiting_taxpayer",
            "An authorization awaits the taxpayer's confirmation",
            f"Your {_form(event)} for {_tin(event)} awaits the taxpayer's confirmation, due "
            f"{by}. It takes effect only if the taxpayer confirms it.",
        ),
    ]


def _protected_refusal_drafts(
    event: AuthorizationRejected | AuthorizationNotProcessed, body: str
) -> list[Draft]:
    """PT-03, PT-04: the practitioner of the CAF number is warned instead of told of a plain
    refusal (like NO-06: someone may have filed in their name, `_refusal_drafts`), and the SREs
    are alerted."""
    del body  # the practitioner's alert carries it
    refused = event.reason_code == ReasonCode.REJ_PT_REFUSED
    state = "refused by the taxpayer" if refused else "not confirmed by the taxpayer in time"
    names = f"CAF number {event.caf_number}" if event.caf_number else "no CAF number"
    return [
        Draft(
            Addressee("sre", "sre"),
            "protected_authorization_refused",
            f"A protected taxpayer's authorization was {'refused' if refused else 'not confirmed'}",
            f"Grant {clean(event.grant_id, 64)} of a taxpayer protected by the IP PIN program "
            f"was {state} ({event.rule_id}, {event.reason_code}); it names {names}. Possible "
            f"identity theft: review the practitioner's other authorizations.",
        ),
    ]


def _without_ip_pin(text: str) -> str:
    """PT-05: `text` with the digits of any six-digit number next to "IP PIN" masked (the same
    length, so a notice that fitted still fits); masking may bring a later number within
    reach, hence the loop (each turn masks six digits)."""
    while found := IP_PIN_TEXT.search(text):
        digits = SIX_DIGITS.search(text, found.start(), found.end())
        if digits is None:  # the pattern always holds six digits; never loop on a miss
            break
        text = f"{text[: digits.start()]}******{text[digits.end() :]}"
    return text


def _with_warning(body: str) -> str:
    """PT-05: a taxpayer's notice ends with the IP PIN warning; the body before it is cut to
    leave room for it, so the notice stays within the size limit."""
    room = MAX_TEXT - len(IP_PIN_WARNING) - 1
    if len(body) > room:
        body = body[: room - 1].rstrip() + "…"
    return f"{body} {IP_PIN_WARNING}"


def _notifications(event: Event, drafts: list[Draft], now: dt.datetime) -> list[Notification]:
    """The drafts as notifications (NO-08): an id per (event, recipient), and per qualifier
    when one event tells one recipient twice. The qualifier joins the name the id is derived
    from as `schemas.ids.event_id`'s qualifiers do."""
    return [
        Notification(
            notification_id=notification_id(
                event.event_id,
                d.to.recipient,
                f"{d.to.ref}\x1f{d.qualifier}" if d.qualifier else d.to.ref,
            ),
            event_id=event.event_id,
            recipient=d.to.recipient,
            recipient_ref=d.to.ref,
            template=d.template,
            channel=d.channel or _channel(event, d.to.recipient),
            created_at=now,
            subject=_without_ip_pin(d.subject),
            body=_without_ip_pin(_with_warning(d.body) if d.to.recipient == "taxpayer" else d.body),
        )
        for d in drafts
    ]


def _taxpayer(event: Event) -> Addressee:
    return Addressee("taxpayer", event.taxpayer_ref)


def _representative(event: Event) -> Addressee:
    return Addressee("representative", _representative_ref(event))
