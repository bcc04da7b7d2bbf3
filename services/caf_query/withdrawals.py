"""MN-07: a practitioner withdraws from one of their grants through the authorization API
(`POST /v1/practitioners/me/withdrawals`), as the annual review statement offers.

The read side never holds a TIN, so the withdrawal names the taxpayer by the `taxpayer_ref` of
its view (with the last four digits); it is signed with the API's own publisher key (`caf-api`,
allow-listed for withdrawals only) and published to `caf.inbound.v1`, where intake handles it
like any other withdrawal (IN-04 accepts a taxpayer by reference only from `caf-api`), and the
poster takes the grant's units from the CAF. The signature is the practitioner's act in Tax Pro
Account's sense: a checkbox, on the day, by the signed-in holder of the CAF number.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

from caf_client.publisher import signed_record
from caf_client.signing import Signer
from caf_runtime.clock import business_day
from schemas.inbound import Signature, TaxMatter, TaxpayerIdentity, Withdrawal, form_type
from services.caf_query.views import GrantView

Send = Callable[[str, bytes | None, bytes | None, list[tuple[str, bytes]]], Awaitable[None]]


class Withdrawals:
    """Builds, signs and publishes a practitioner's withdrawal from one grant."""

    def __init__(self, signer: Signer, send: Send, now: Callable[[], datetime]) -> None:
        self._signer = signer
        self._send = send
        self._now = now

    def message(self, caf_number: str, view: GrantView) -> Withdrawal:
        """The withdrawal from `view`'s units as they are now (none other of the taxpayer's)."""
        now = self._now()
        return Withdrawal(
            kind="withdrawal",
            schema_version=1,
            message_id=f"api-wd-{uuid.uuid4()}",
            sent_at=now,
            caf_number=caf_number,
            taxpayer=TaxpayerIdentity(ref=view.taxpayer_ref, tin_last4=view.tin_last4),
            form=form_type(view.form),
            tax_matters=[
                TaxMatter(tax_type=m.tax_type, form_number=m.form_number, periods=list(m.periods))
                for m in view.matters
            ],
            signature=Signature(date=business_day(now), method="checkbox", at=now),
        )

    async def submit(self, caf_number: str, view: GrantView) -> str:
        """Publish the withdrawal; its message id (the outcome events name it)."""
        message = self.message(caf_number, view)
        record = signed_record(self._signer, message)
        await self._send(record.topic, record.key, record.value, record.headers)
        return message.message_id
