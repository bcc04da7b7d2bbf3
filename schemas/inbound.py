"""Messages on `caf.inbound.v1`, discriminated by `kind` (docs/contract.md, "Inbound messages").

Only the message's structure is enforced here. Fields that business rules judge (a missing TIN,
signature or credential, a malformed period or CAF number) stay optional or plain text, so intake
can reject them with their own reason code instead of a schema error.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, Field

from schemas.base import InboundModel, described
from schemas.errors import ContractError
from schemas.ids import TAXPAYER_REF_PATTERN
from schemas.values import has_tin_like_number

__all__ = [
    "DO_KINDS",
    "INBOUND_KINDS",
    "Address",
    "Channel",
    "DoDeactivation",
    "DoPinRedeem",
    "DoPinRequest",
    "EntityType",
    "EntityUserChange",
    "FormType",
    "FreeText",
    "IdentitySubject",
    "InboundMessage",
    "MessageId",
    "OfficialMessage",
    "ProtectedConfirmation",
    "Representative",
    "Retained",
    "Revocation",
    "RevocationChannel",
    "Signature",
    "SignatureMethod",
    "Submission",
    "TaxMatter",
    "Taxpayer",
    "TaxpayerIdentity",
    "TinTypeField",
    "TpaDecision",
    "TpaRequest",
    "Withdrawal",
    "form_type",
    "free_text",
    "identifier",
]

FormType = Literal["2848", "8821"]
TinTypeField = Literal["SSN", "ITIN", "EIN"]
SignatureMethod = Literal["wet", "electronic", "checkbox"]
EntityType = Literal["individual", "corporation", "partnership", "trust", "estate", "other"]
Channel = Literal["upload", "fax", "mail"]
RevocationChannel = Literal["online_account", "upload", "fax", "mail"]


def form_type(value: str | None) -> FormType:
    """A form named in our own records (a grant's, a view's), as the contract types it: 2848 or
    8821; anything else is a ContractError, never passed on."""
    if value == "2848":
        return "2848"
    if value == "8821":
        return "8821"
    raise ContractError.single("form", "unknown_form", f"a record of form {value!r}")


def identifier(value: str) -> str:
    """IDs (`message_id`, `request_id`, `group_id`) flow into keys, logs and notices: letters,
    digits and `. _ : -` only, at most 128, and never shaped like a TIN (a fraudster's or a
    careless portal's way to smuggle one past intake)."""
    if not _ID_SHAPE.fullmatch(value):
        msg = "an id is 1-128 letters, digits, '.', '_', ':' or '-', from a letter or digit"
        raise ValueError(msg)
    if _TIN_IN_ID.search(value):
        msg = "an id must not contain a taxpayer identification number"
        raise ValueError(msg)
    return value


_ID_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", re.ASCII)
# nine digits as one token, grouped like an SSN/ITIN (3-2-4) or an EIN (2-7), or not at all
_TIN_IN_ID = re.compile(
    r"(?:^|[^0-9A-Za-z])(?:\d{3}[-._:]?\d{2}[-._:]?\d{4}|\d{2}[-._:]\d{7})(?:$|[^0-9A-Za-z])",
    re.ASCII,
)
MessageId = Annotated[str, AfterValidator(identifier)]


def free_text(value: str) -> str:
    """Text that leaves intake (a representative's name, a tax matter's words): never a run of
    nine digits or more, the shape of a TIN however grouped (a CAF number has its own field)."""
    if has_tin_like_number(value):
        msg = "free text must not contain a taxpayer identification number"
        raise ValueError(msg)
    return value


FreeText = Annotated[str, AfterValidator(free_text)]


class Address(InboundModel):
    """A postal address."""

    line1: str | None = described("Street line.", "1 Main St", default=None)
    city: str | None = described("City.", "Memphis", default=None)
    state: str | None = described("State or province code.", "TN", default=None)
    postal_code: str | None = described("ZIP or postal code.", "38103", default=None)
    country: str | None = described("ISO 3166-1 alpha-2 country code.", "US", default=None)


class Signature(InboundModel):
    """A signature: its date, method and, for online signatures, identity assurance levels."""

    date: dt.date | None = described("Day of signing (YYYY-MM-DD).", "2026-11-18", default=None)
    method: SignatureMethod | None = described("How it was signed.", "electronic", default=None)
    ial: int | None = described("Identity assurance level of the signer's login.", 2, default=None)
    aal: int | None = described(
        "Authenticator assurance level of the signer's login.", 2, default=None
    )
    at: AwareDatetime | None = described(
        "Instant of an online approval (orders approvals in a group).",
        "2026-11-21T09:12:44-05:00",
        default=None,
    )


class Taxpayer(InboundModel):
    """The taxpayer granting the authorization."""

    tin: str | None = described("Taxpayer identification number.", "123-45-6789", default=None)
    tin_type: TinTypeField | None = described("Kind of TIN.", "SSN", default=None)
    name: str | None = described("Taxpayer name.", "Jordan Q Public", default=None)
    entity_type: EntityType | None = described("Kind of taxpayer.", "individual", default=None)
    signer_title: str | None = described(
        "Title of the person signing for an entity.", "President", default=None
    )
    address: Address | None = described(
        "Taxpayer address.", {"line1": "1 Main St", "city": "Memphis"}, default=None
    )
    signature: Signature | None = described(
        "Taxpayer signature.", {"date": "2026-11-18", "method": "electronic"}, default=None
    )


class TaxpayerIdentity(InboundModel):
    """The taxpayer named by a withdrawal or revocation."""

    tin: str | None = described("Taxpayer identification number.", "123-45-6789", default=None)
    tin_type: TinTypeField | None = described("Kind of TIN.", "SSN", default=None)
    ref: str | None = described(
        "Only in a withdrawal published by `caf-api` (a practitioner withdrawing through the "
        "authorization API, which never holds a TIN): the taxpayer's `taxpayer_ref` instead of "
        "the TIN.",
        None,
        default=None,
        pattern=TAXPAYER_REF_PATTERN,
    )
    tin_last4: str | None = described(
        "With `ref`: the TIN's last four digits, for the notices.",
        None,
        default=None,
        pattern=r"^[0-9]{4}$",
    )


class Representative(InboundModel):
    """A representative (2848) or designee (8821) on a form or TPA request."""

    caf_number: str | None = described(
        'CAF number; null or "None" for a first-time representative.', "0301-12345R", default=None
    )
    name: FreeText | None = described("Representative name.", "Avery Smith", default=None)
    designation: FreeText | None = described(
        "2848 designation letter (a-h, k, r); absent for 8821 designees.", "b", default=None
    )
    jurisdiction: FreeText | None = described("Licensing jurisdiction.", "TN", default=None)
    licence_number: FreeText | None = described(
        "Bar, licence or enrollment number.", "CPA-55102", default=None
    )
    ptin: FreeText | None = described(
        "Preparer tax identification number.", "P01234567", default=None
    )
    title: FreeText | None = described(
        "Title or relationship for designations d, e, f (additive field).", "Officer", default=None
    )
    receive_notices: bool = described("Elects copies of notices.", True, default=False)
    student_letter_attached: bool = described(
        "Designation k: the LITC/STCP letter is attached.", False, default=False
    )
    signature: Signature | None = described(
        "Representative signature (2848 only).", {"date": "2026-11-19"}, default=None
    )


class TaxMatter(InboundModel):
    """Tax matters: one tax type and form number with its periods."""

    tax_type: FreeText | None = described("Type of tax.", "Income", default=None)
    form_number: FreeText | None = described("Tax form number.", "1040", default=None)
    periods: list[Annotated[FreeText, Field(max_length=64)]] | None = described(
        "Periods: YYYY, YYYY-MM (period ending), YYYY-YYYY, YYYY thru YYYY or "
        "YYYY-MM thru YYYY-MM.",
        ["2023", "2024", "2025"],
        default=None,
        max_length=100,
    )


class Retained(InboundModel):
    """A prior authorization that stays in effect (RT-01): by the representative's CAF number
    or by its authorization id (exactly one of the two)."""

    caf_number: str | None = described(
        "CAF number of a representative whose prior grants stay.", "0301-12345R", default=None
    )
    authorization_id: FreeText | None = described(
        "A prior authorization that stays.", "5e1d2c3b-4a59", default=None, max_length=128
    )


_JWT_EXAMPLE = "eyJhbGciOiJFZDI1NTE5Iiwia2lkIjoic2VjdXJlLWFjY2VzcyJ9.eyJpc3MiOiIuLi4ifQ.c2ln"


def _assertion_field(description: str, example: str | None = _JWT_EXAMPLE) -> Any:
    """An `identity_assertion`, the same field wherever a message carries one: a compact JWT
    of at most 8,192 characters, or none; what it asserts is in the description."""
    return described(description, example, default=None, max_length=8192)


class _Inbound(InboundModel):
    schema_version: int = described("Contract version (always 1 on this topic).", 1, ge=1, le=1)
    message_id: MessageId = described(
        "Unique per publish attempt of one logical message; the dedup key.",
        "7b0c9a52-3f1e-4c39-9a43-0f3f4f8e2d11",
    )
    sent_at: AwareDatetime = described(
        "When the portal published it (RFC 3339 with offset).", "2026-11-20T14:03:00-05:00"
    )


class Submission(_Inbound):
    """A signed form from upload, fax or mail."""

    kind: Literal["submission"] = described("Message kind.", "submission")
    channel: Channel = described("Intake channel.", "upload")
    received_on: dt.date = described("Day the IRS received the form.", "2026-11-20")
    form: FormType = described("2848 (POA) or 8821 (TIA).", "2848")
    taxpayer: Taxpayer = described("The taxpayer.", {"tin": "123-45-6789", "tin_type": "SSN"})
    representatives: list[Representative] = described(
        "Representatives or designees, in listed order (at least one).",
        [{"caf_number": "0301-12345R", "name": "Avery Smith"}],
        min_length=1,
        max_length=50,
    )
    tax_matters: list[TaxMatter] = described(
        "Tax matters authorized (at least one).",
        [{"tax_type": "Income", "form_number": "1040", "periods": ["2024"]}],
        min_length=1,
        max_length=100,
    )
    specific_use: bool = described(
        "Line 4: specific use not recorded on CAF.", False, default=False
    )
    retain_prior: bool = described(
        "Keep prior authorizations in effect (copies attached).", False, default=False
    )
    prior_copies_attached: int = described(
        "Number of prior authorizations attached.", 0, default=0, ge=0
    )
    retain: list[Retained] | None = described(
        "With `retain_prior`: which prior authorizations stay in effect (RT-01); absent = all "
        "(v1 meaning).",
        [{"caf_number": "0301-12345R"}],
        default=None,
        max_length=50,
    )
    continuation_pages: int = described(
        "Attached continuation Forms 2848 carrying representatives 5 and on (CN-07).",
        0,
        default=0,
        ge=0,
        le=50,
    )


class TpaRequest(_Inbound):
    """A tax professional starts a request in Tax Pro Account."""

    kind: Literal["tpa_request"] = described("Message kind.", "tpa_request")
    request_id: MessageId = described("TPA request id.", "tpa-2026-000123")
    group_id: MessageId | None = described(
        "Shared by co-representatives of one authorization.", "grp-88f1", default=None
    )
    received_on: dt.date = described("Day the request was received.", "2026-11-20")
    form: FormType = described("2848 or 8821.", "2848")
    taxpayer: Taxpayer = described("The taxpayer.", {"tin": "123-45-6789", "tin_type": "SSN"})
    representative: Representative = described(
        "The requesting professional.", {"caf_number": "0301-12345R", "designation": "c"}
    )
    tax_matters: list[TaxMatter] = described(
        "Tax matters requested.",
        [{"tax_type": "Income", "form_number": "1040", "periods": ["2025"]}],
        max_length=100,
    )


class TpaDecision(_Inbound):
    """The taxpayer approves or declines a TPA request in Online Account."""

    kind: Literal["tpa_decision"] = described("Message kind.", "tpa_decision")
    request_id: MessageId = described("TPA request decided.", "tpa-2026-000123")
    decision: Literal["approve", "decline"] = described("The decision.", "approve")
    taxpayer_signature: Signature | None = described(
        "Taxpayer signature with `at` and assurance levels.",
        {"date": "2026-11-21", "method": "checkbox", "ial": 2, "aal": 2},
        default=None,
    )
    identity_assertion: str | None = _assertion_field(
        "The taxpayer's identity assertion (a JWT from an allow-listed identity provider, "
        "`nonce` = `request_id`; AU-02). Required: a decision without one is refused."
    )


class Withdrawal(_Inbound):
    """A representative withdraws from authorizations."""

    kind: Literal["withdrawal"] = described("Message kind.", "withdrawal")
    caf_number: str = described("CAF number of the withdrawing representative.", "0301-12345R")
    taxpayer: TaxpayerIdentity = described(
        "The taxpayer.", {"tin": "123-45-6789", "tin_type": "SSN"}
    )
    form: FormType = described("Form type withdrawn from.", "2848")
    tax_matters: list[TaxMatter] | None = described(
        "Matters withdrawn; null = all of this representative's grants.",
        None,
        default=None,
        max_length=1000,
    )
    signature: Signature | None = described(
        "Representative signature.", {"date": "2026-11-21", "method": "checkbox"}, default=None
    )


class Revocation(_Inbound):
    """The taxpayer revokes authorizations."""

    kind: Literal["revocation"] = described("Message kind.", "revocation")
    channel: RevocationChannel | None = described(
        "Where the taxpayer revoked: `online_account` (needs `identity_assertion`, AU-02), or "
        "`upload`, `fax`, `mail`. Absent: paper, unless the Online Account portal signed it.",
        "mail",
        default=None,
    )
    taxpayer: TaxpayerIdentity = described(
        "The taxpayer.", {"tin": "123-45-6789", "tin_type": "SSN"}
    )
    form: FormType = described("Form type revoked.", "2848")
    caf_numbers: list[str] | None = described(
        "Representatives revoked; null = all.", ["0301-12345R"], default=None, max_length=50
    )
    tax_matters: list[TaxMatter] | None = described(
        "Matters revoked; null = all.", None, default=None, max_length=1000
    )
    signature: Signature | None = described(
        "Taxpayer signature.", {"date": "2026-11-21", "method": "wet"}, default=None
    )
    identity_assertion: str | None = _assertion_field(
        "For an online revocation: the taxpayer's identity assertion (`nonce` = `message_id`; "
        "AU-02).",
        example=None,
    )


class IdentitySubject(InboundModel):
    """A person as an allow-listed identity provider names them: its issuer and their subject."""

    issuer: str = described("The identity provider.", "https://secure-access.local", max_length=256)
    subject: str = described("Their subject at that provider.", "sa-7f3b21", max_length=256)


def _official_assertion(act: str) -> Any:
    return _assertion_field(
        f"The identity assertion of {act} (a JWT from an allow-listed identity provider, "
        "`nonce` = `message_id`; AU-02)."
    )


class DoPinRequest(_Inbound):
    """A person with authority to bind a business asks to be its Designated Official (DO-02)."""

    kind: Literal["do_pin_request"] = described("Message kind.", "do_pin_request")
    entity: TaxpayerIdentity = described(
        "The business (its EIN).", {"tin": "12-3456789", "tin_type": "EIN"}
    )
    title: FreeText | None = described(
        "The requester's title at the business (DO-02's table).", "President", default=None
    )
    attests_authority: bool = described(
        "The requester attests they can legally bind the business.", True, default=False
    )
    identity_assertion: str | None = _official_assertion("the requester")


class DoPinRedeem(_Inbound):
    """The requester enters the CP311 PIN in Business Tax Account (DO-05)."""

    kind: Literal["do_pin_redeem"] = described("Message kind.", "do_pin_redeem")
    entity: TaxpayerIdentity = described(
        "The business (its EIN).", {"tin": "12-3456789", "tin_type": "EIN"}
    )
    sealed_pin: str | None = described(
        "The PIN as typed, sealed by the portal to intake's PIN key (compact JWE, "
        "ECDH-ES+A256KW / A256GCM): the PIN itself is never on a topic but the CP311 letter.",
        "eyJhbGciOiJFQ0RILUVTK0EyNTZLVyIsImVuYyI6IkEyNTZHQ00ifQ...",
        default=None,
        max_length=4096,
    )
    identity_assertion: str | None = _official_assertion("the requester")


class EntityUserChange(_Inbound):
    """An active Designated Official adds or removes another authorized user (DO-06)."""

    kind: Literal["entity_user"] = described("Message kind.", "entity_user")
    entity: TaxpayerIdentity = described(
        "The business (its EIN).", {"tin": "12-3456789", "tin_type": "EIN"}
    )
    action: Literal["add", "remove"] = described("What to do.", "add")
    user: IdentitySubject = described(
        "The authorized user.", {"issuer": "https://secure-access.local", "subject": "sa-91c0"}
    )
    identity_assertion: str | None = _official_assertion("the Designated Official")


class DoDeactivation(_Inbound):
    """Another active Designated Official of the business deactivates one (DO-07)."""

    kind: Literal["do_deactivate"] = described("Message kind.", "do_deactivate")
    entity: TaxpayerIdentity = described(
        "The business (its EIN).", {"tin": "12-3456789", "tin_type": "EIN"}
    )
    official: IdentitySubject = described(
        "The Designated Official to deactivate.",
        {"issuer": "https://secure-access.local", "subject": "sa-7f3b21"},
    )
    identity_assertion: str | None = _official_assertion("the acting Designated Official")


class ProtectedConfirmation(_Inbound):
    """A protected taxpayer confirms or refuses, in Online Account, an authorization held for
    their confirmation (PT-03)."""

    kind: Literal["protected_confirmation"] = described("Message kind.", "protected_confirmation")
    grant_id: MessageId = described(
        "The held grant (from the notice: `AuthorizationHeld.grant_id`).", "7b0c9a52:0"
    )
    taxpayer: TaxpayerIdentity = described(
        "The taxpayer.", {"tin": "123-45-6789", "tin_type": "SSN"}
    )
    decision: Literal["confirm", "refuse"] = described("The taxpayer's answer.", "confirm")
    identity_assertion: str | None = _assertion_field(
        "The taxpayer's identity assertion (a JWT from an allow-listed identity provider, "
        "`nonce` = `grant_id`; AU-02). Required: an answer without one is refused."
    )


DO_KINDS = ("do_pin_request", "do_pin_redeem", "entity_user", "do_deactivate")
OfficialMessage = DoPinRequest | DoPinRedeem | EntityUserChange | DoDeactivation

InboundMessage = Annotated[
    Submission
    | TpaRequest
    | TpaDecision
    | Withdrawal
    | Revocation
    | DoPinRequest
    | DoPinRedeem
    | EntityUserChange
    | DoDeactivation
    | ProtectedConfirmation,
    Field(discriminator="kind"),
]
INBOUND_KINDS = (
    "submission",
    "tpa_request",
    "tpa_decision",
    "withdrawal",
    "revocation",
    *DO_KINDS,
    "protected_confirmation",
)
