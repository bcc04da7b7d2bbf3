"""Valid messages of the contract, built from its models: the one place that says what a clean
Form 2848 or 8821 submission, a Tax Pro Account request and decision, a withdrawal, a revocation,
a practitioner registry record and a business entity record hold. The unit and service tests
(`tests/unit/builders.py`), the end-to-end tests (`tests/e2e/conftest.py`), `make demo`
(`devstack/demo.py`) and the chaos and benchmark workload (`devstack/workload.py`) build theirs
here.

Each builder returns the pydantic model, strict and valid as intake reads it; `document` gives
its JSON form as a portal publishes it (the fields it was built with), with the changes a test
makes on the wire, also ones the contract refuses. The defaults are the examples of
docs/contract.md: a 2848 of taxpayer 123-45-6789, received 2026-11-20, naming CAF 0301-12345R;
a caller that publishes now passes today's dates (`business_today`) and a fresh message id.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel

from caf_runtime.clock import business_day
from schemas.codec import decode_inbound
from schemas.entities import BusinessType, EntityRecord
from schemas.inbound import (
    Address,
    Channel,
    FormType,
    InboundMessage,
    Representative,
    Revocation,
    RevocationChannel,
    Signature,
    SignatureMethod,
    Submission,
    TaxMatter,
    Taxpayer,
    TaxpayerIdentity,
    TpaDecision,
    TpaRequest,
    Withdrawal,
)
from schemas.registry import PractitionerRecord, StatusCode

__all__ = [
    "ADDRESS",
    "BUSINESS_ADDRESS",
    "CAF_NUMBER",
    "MESSAGE_ID",
    "RECEIVED",
    "REQUEST_ID",
    "SENT_AT",
    "SUBMISSION_ID",
    "TIN",
    "business",
    "business_today",
    "decoded",
    "document",
    "entity",
    "individual",
    "method_for",
    "online_signature",
    "practitioner",
    "removal",
    "representative",
    "representatives",
    "revocation",
    "signature",
    "submission",
    "tax_matter",
    "tax_professional",
    "tpa_decision",
    "tpa_decision_now",
    "tpa_request",
    "tpa_request_now",
    "withdrawal",
]

_EASTERN = dt.timezone(dt.timedelta(hours=-5))

TIN = "123-45-6789"
CAF_NUMBER = "0301-12345R"
SUBMISSION_ID = "7b0c9a52-3f1e-4c39-9a43-0f3f4f8e2d11"
MESSAGE_ID = "3d1f7a7e-5a0b-4f0e-9c3e-0c8f2f5a9b21"  # the contract's other messages
REQUEST_ID = "tpa-2026-000123"
RECEIVED = dt.date(2026, 11, 20)
SENT_AT = dt.datetime(2026, 11, 20, 14, 3, tzinfo=_EASTERN)
ADDRESS = Address(line1="1 Main St", city="Memphis", state="TN", postal_code="38103", country="US")
BUSINESS_ADDRESS = Address(line1="200 Commerce St", city="Nashville", state="TN")
_ENTITY_ADDRESS = Address(
    line1="200 Commerce St", city="Nashville", state="TN", postal_code="37219", country="US"
)

_TAXPAYER_SIGNED = dt.date(2026, 11, 18)
_REPRESENTATIVE_SIGNED = dt.date(2026, 11, 19)
_DECIDED = dt.date(2026, 11, 21)
_DECIDED_AT = dt.datetime(2026, 11, 21, 9, 12, 44, tzinfo=_EASTERN)
_DECISION_SENT_AT = dt.datetime(2026, 11, 21, 9, 12, 45, tzinfo=_EASTERN)
_REMOVAL_SENT_AT = dt.datetime(2026, 11, 21, 10, tzinfo=_EASTERN)
_REGISTRY_UPDATED_AT = dt.datetime(2026, 11, 1, 8, tzinfo=dt.UTC)


def _given(**fields: Any) -> dict[str, Any]:
    """The optional fields that have a value: a field of None is left out of the message (and
    so off the wire), the way a portal leaves out what it does not have."""
    return {name: value for name, value in fields.items() if value is not None}


def business_today() -> dt.date:
    """Today where the rules count days (New York): a signature dated the UTC date would be in
    the future for IN-05 in the evening hours."""
    return business_day(dt.datetime.now(dt.UTC))


def method_for(channel: Channel) -> SignatureMethod:
    """How a form of `channel` is signed (IN-06): wet on paper (mail, fax), electronically on
    an upload."""
    return "wet" if channel in {"mail", "fax"} else "electronic"


def signature(on: dt.date, method: SignatureMethod = "electronic") -> Signature:
    return Signature(date=on, method=method)


def online_signature(on: dt.date, at: dt.datetime | None = None) -> Signature:
    """A checkbox in Tax Pro Account or Online Account behind a login of identity and
    authenticator assurance level 2 (IN-26); an approval also says when (`at`, PO-03)."""
    if at is None:
        return Signature(date=on, method="checkbox", ial=2, aal=2)
    return Signature(date=on, method="checkbox", ial=2, aal=2, at=at)


def individual(
    tin: str = TIN,
    *,
    name: str = "Jordan Q Public",
    address: Address = ADDRESS,
    signed: Signature | None = None,
) -> Taxpayer:
    """A person (by their SSN) in Memphis, with their signature if `signed` (on a form; a Tax
    Pro Account request has none)."""
    return Taxpayer(
        tin=tin,
        tin_type="SSN",
        name=name,
        entity_type="individual",
        address=address,
        **_given(signature=signed),
    )


def business(ein: str = "12-3456789", *, address: Address = BUSINESS_ADDRESS) -> Taxpayer:
    """A corporation (by its EIN) as the taxpayer of a Tax Pro Account request (DO-08)."""
    return Taxpayer(
        tin=ein,
        tin_type="EIN",
        name="Bluegrass Tooling Inc",
        entity_type="corporation",
        address=address,
    )


def representative(
    form: FormType = "2848",
    *,
    caf_number: str | None = CAF_NUMBER,
    name: str = "Avery Smith",
    ptin: str | None = "P01234567",
    licence_number: str = "CPA-55102",
    receive_notices: bool = True,
    signed: Signature | None = None,
) -> Representative:
    """A representative as a form lists them: on a 2848 a CPA licensed in Tennessee (designation
    b) who signed (`signed`, else electronically on 2026-11-19); on an 8821 a designee, with
    neither designation, credentials nor signature. A `ptin` of None is left out."""
    if form == "8821":
        return Representative(
            caf_number=caf_number, name=name, receive_notices=receive_notices, **_given(ptin=ptin)
        )
    return Representative(
        caf_number=caf_number,
        name=name,
        designation="b",
        jurisdiction="TN",
        licence_number=licence_number,
        receive_notices=receive_notices,
        signature=signed or signature(_REPRESENTATIVE_SIGNED),
        **_given(ptin=ptin),
    )


def representatives(
    form: FormType,
    named: Sequence[Mapping[str, Any]],
    *,
    signed: Signature,
    licence_number: str = "CPA-55102",
) -> list[Representative]:
    """The `representative`s a form lists, each named by its `caf_number` (none: a first-time
    representative) and `name`, with a `ptin` or `receive_notices` only where `named` says;
    on a 2848 all signed alike (`signed`)."""
    base: dict[str, Any] = {"caf_number": None, "ptin": None, "receive_notices": False}
    return [
        representative(form, **(base | dict(fields)), licence_number=licence_number, signed=signed)
        for fields in named
    ]


def tax_professional(
    *,
    caf_number: str = CAF_NUMBER,
    name: str = "Avery Smith",
    licence_number: str | None = "EA-001122",
    receive_notices: bool | None = True,
    signed: Signature | None = None,
) -> Representative:
    """The professional who starts a Tax Pro Account request: an enrolled agent (designation c)
    who signed online (`signed`, else on 2026-11-20). A `licence_number` or `receive_notices`
    of None is left out."""
    return Representative(
        caf_number=caf_number,
        name=name,
        designation="c",
        signature=signed or online_signature(RECEIVED),
        **_given(licence_number=licence_number, receive_notices=receive_notices),
    )


def tax_matter(periods: Sequence[str], *, form_number: str = "1040") -> TaxMatter:
    """Income tax of `form_number` for `periods`."""
    return TaxMatter(tax_type="Income", form_number=form_number, periods=list(periods))


def submission(
    *,
    tin: str = TIN,
    name: str = "Jordan Q Public",
    representatives: Sequence[Representative] | None = None,
    form: FormType = "2848",
    channel: Channel = "upload",
    received_on: dt.date = RECEIVED,
    signed: dt.date = _TAXPAYER_SIGNED,
    periods: Sequence[str] = ("2023", "2024", "2025"),
    message_id: str = SUBMISSION_ID,
    sent_at: dt.datetime = SENT_AT,
    retain_prior: bool = False,
    prior_copies_attached: int = 0,
) -> Submission:
    """A clean form of taxpayer `tin` (`name`, in Memphis), signed by them on `signed` as its
    channel wants (`method_for`), for income tax of `periods`; its `representatives` (default:
    one `representative` of the form, signed the same way)."""
    method = method_for(channel)
    if representatives is None:
        representatives = [representative(form, signed=signature(_REPRESENTATIVE_SIGNED, method))]
    return Submission(
        kind="submission",
        schema_version=1,
        message_id=message_id,
        sent_at=sent_at,
        channel=channel,
        received_on=received_on,
        form=form,
        taxpayer=individual(tin, name=name, signed=signature(signed, method)),
        representatives=list(representatives),
        tax_matters=[tax_matter(periods)],
        specific_use=False,
        retain_prior=retain_prior,
        prior_copies_attached=prior_copies_attached,
    )


def tpa_request(
    *,
    taxpayer: Taxpayer | None = None,
    representative: Representative | None = None,
    request_id: str = REQUEST_ID,
    group_id: str | None = None,
    received_on: dt.date = RECEIVED,
    periods: Sequence[str] = ("2025",),
    form_number: str = "1040",
    message_id: str = MESSAGE_ID,
    sent_at: dt.datetime = SENT_AT,
) -> TpaRequest:
    """A professional's Tax Pro Account request for a 2848: the taxpayer (default: the unsigned
    individual of `individual()`), the professional (default: `tax_professional()`), the periods
    of income tax asked for."""
    return TpaRequest(
        kind="tpa_request",
        schema_version=1,
        message_id=message_id,
        sent_at=sent_at,
        request_id=request_id,
        group_id=group_id,
        received_on=received_on,
        form="2848",
        taxpayer=taxpayer or individual(),
        representative=representative or tax_professional(),
        tax_matters=[tax_matter(periods, form_number=form_number)],
    )


def tpa_decision(
    request_id: str = REQUEST_ID,
    decision: Literal["approve", "decline"] = "approve",
    *,
    signed: Signature | None = None,
    identity_assertion: str | None = None,
    message_id: str = MESSAGE_ID,
    sent_at: dt.datetime = _DECISION_SENT_AT,
) -> TpaDecision:
    """The taxpayer's decision on request `request_id` in Online Account, signed online
    (`signed`, else on 2026-11-21 at 09:12:44 Eastern); its identity assertion (AU-02) only when
    given: a portal adds it as it sends."""
    return TpaDecision(
        kind="tpa_decision",
        schema_version=1,
        message_id=message_id,
        sent_at=sent_at,
        request_id=request_id,
        decision=decision,
        taxpayer_signature=signed or online_signature(_DECIDED, at=_DECIDED_AT),
        **_given(identity_assertion=identity_assertion),
    )


def tpa_request_now(
    taxpayer: Taxpayer,
    caf_number: str,
    *,
    request_id: str,
    name: str = "Avery Smith",
    licence_number: str | None = "EA-001122",
    receive_notices: bool | None = True,
    group_id: str | None = None,
    form_number: str = "1040",
    today: dt.date | None = None,
) -> TpaRequest:
    """A `tpa_request` as a portal publishes it now: of the `tax_professional` `caf_number`
    (`name`, …), who signed online on the day it is received, `today` (else `business_today`),
    for last year's income tax, with a fresh message id."""
    today = today or business_today()
    return tpa_request(
        taxpayer=taxpayer,
        representative=tax_professional(
            caf_number=caf_number,
            name=name,
            licence_number=licence_number,
            receive_notices=receive_notices,
            signed=online_signature(today),
        ),
        request_id=request_id,
        group_id=group_id,
        received_on=today,
        periods=[str(today.year - 1)],
        form_number=form_number,
        message_id=str(uuid.uuid4()),
        sent_at=dt.datetime.now(dt.UTC),
    )


def tpa_decision_now(
    request_id: str,
    decision: Literal["approve", "decline"] = "approve",
    *,
    signed: dt.date | None = None,
    at: dt.datetime | None = None,
    identity_assertion: str | None = None,
) -> TpaDecision:
    """A `tpa_decision` as a portal publishes it now, with a fresh message id: signed online
    on `signed` (else `business_today`) at `at` (else now)."""
    return tpa_decision(
        request_id,
        decision,
        signed=online_signature(signed or business_today(), at=at or dt.datetime.now(dt.UTC)),
        identity_assertion=identity_assertion,
        message_id=str(uuid.uuid4()),
        sent_at=dt.datetime.now(dt.UTC),
    )


def withdrawal(
    caf_number: str = CAF_NUMBER,
    *,
    tin: str = TIN,
    tax_matters: Sequence[TaxMatter] | None = None,
    signed: Signature | None = None,
    message_id: str = MESSAGE_ID,
    sent_at: dt.datetime = _REMOVAL_SENT_AT,
) -> Withdrawal:
    """Representative `caf_number` withdraws from the taxpayer's 2848 (all matters unless
    `tax_matters`), with a checkbox (`signed`, else on 2026-11-21)."""
    return Withdrawal(
        kind="withdrawal",
        schema_version=1,
        message_id=message_id,
        sent_at=sent_at,
        caf_number=caf_number,
        taxpayer=TaxpayerIdentity(tin=tin, tin_type="SSN"),
        form="2848",
        tax_matters=None if tax_matters is None else list(tax_matters),
        signature=signed or signature(_DECIDED, "checkbox"),
    )


def revocation(
    *,
    tin: str = TIN,
    caf_numbers: Sequence[str] | None = None,
    tax_matters: Sequence[TaxMatter] | None = None,
    signed: Signature | None = None,
    channel: RevocationChannel | None = None,
    message_id: str = MESSAGE_ID,
    sent_at: dt.datetime = _REMOVAL_SENT_AT,
) -> Revocation:
    """The taxpayer revokes their 2848 (all representatives and matters unless `caf_numbers`,
    `tax_matters`), signed (`signed`, else wet on 2026-11-21); `channel` only when given."""
    return Revocation(
        kind="revocation",
        schema_version=1,
        message_id=message_id,
        sent_at=sent_at,
        taxpayer=TaxpayerIdentity(tin=tin, tin_type="SSN"),
        form="2848",
        caf_numbers=None if caf_numbers is None else list(caf_numbers),
        tax_matters=None if tax_matters is None else list(tax_matters),
        signature=signed or signature(_DECIDED, "wet"),
        **_given(channel=channel),
    )


def removal(
    kind: str,
    *,
    caf_number: str = CAF_NUMBER,
    tin: str = TIN,
    signed: Signature | None = None,
    message_id: str = MESSAGE_ID,
    sent_at: dt.datetime = _REMOVAL_SENT_AT,
) -> Withdrawal | Revocation:
    """A `withdrawal` of representative `caf_number`, else the taxpayer's `revocation` of all
    their representatives: the two ways a 2848 ends early (PO-09, PO-10)."""
    if kind == "withdrawal":
        return withdrawal(
            caf_number, tin=tin, signed=signed, message_id=message_id, sent_at=sent_at
        )
    return revocation(tin=tin, signed=signed, message_id=message_id, sent_at=sent_at)


def practitioner(
    caf_number: str = "030112345",
    name: str = "Avery Smith",
    *,
    status_code: StatusCode = "",
    designations: Sequence[str] = ("b",),
    jurisdiction: str | None = "TN",
    licence_number: str | None = "CPA-55102",
    ptin: str | None = "P01234567",
    ptin_valid_through: dt.date | None = dt.date(2026, 12, 31),
    afsp_years: Sequence[int] | None = (2025, 2026),
    updated_at: dt.datetime = _REGISTRY_UPDATED_AT,
) -> PractitionerRecord:
    """A practitioner registry record (`caf.practitioners.v1`): a CPA in good standing, licensed
    in Tennessee. An optional field of None is left out."""
    return PractitionerRecord(
        caf_number=caf_number,
        name=name,
        status_code=status_code,
        designations=list(designations),
        updated_at=updated_at,
        **_given(
            jurisdiction=jurisdiction,
            licence_number=licence_number,
            ptin=ptin,
            ptin_valid_through=ptin_valid_through,
            afsp_years=None if afsp_years is None else list(afsp_years),
        ),
    )


def entity(
    entity_id: str,
    ein: str = "12-3456789",
    *,
    entity_type: BusinessType = "corporation",
    updated_at: dt.datetime | None = None,
) -> EntityRecord:
    """An active business in the entity feed (`caf.entities.v1`, DO-01): the corporation of
    `business()`, at its address of record in Nashville. An `updated_at` of None is left out."""
    return EntityRecord(
        entity_id=entity_id,
        ein=ein,
        legal_name="Bluegrass Tooling Inc",
        entity_type=entity_type,
        address=_ENTITY_ADDRESS,
        status="active",
        **_given(updated_at=updated_at),
    )


def document(message: BaseModel, **changes: Any) -> dict[str, Any]:
    """The JSON form of `message` as a portal publishes it (the fields it was built with), with
    `changes` made on the wire: `field=value` replaces a field of the message, `part__field`
    one of its part (`taxpayer__tin`), `rep__field` one of its (first) representative. A change
    may break the contract: that is what a test of a rejection sends."""
    wire: dict[str, Any] = message.model_dump(mode="json", exclude_unset=True)
    for name, value in changes.items():
        part, _, field = name.partition("__")
        if not field:
            wire[name] = value
        elif part == "rep" and "representatives" in wire:
            wire["representatives"][0][field] = value
        else:
            wire["representative" if part == "rep" else part][field] = value
    return wire


def decoded(wire: dict[str, Any]) -> InboundMessage:
    """An inbound message read from its JSON form the way intake reads it (`decode_inbound`)."""
    return decode_inbound(json.dumps(wire).encode())
