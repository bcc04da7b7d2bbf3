"""The demo's business flow (Designated Officials, CP311): a business in the entity feed, its
president asks Business Tax Account to be its Designated Official, the CP311 letter goes by mail,
the president redeems the PIN, a tax professional asks for a power of attorney for the business in
Tax Pro Account, a stranger's approval is refused and the official's is posted; the read side
shows the official the business's authorizations.

Printed: each step's outcome, the letter's template and channel (the PIN masked: it exists only
in the letter), and the `cafctl officials show` command of the business.
"""

from __future__ import annotations

import asyncio
import functools
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from caf_client import CafPublisher, seal_pin
from caf_runtime.authenticity import (
    BUSINESS_TAX_ACCOUNT,
    ENTITY_FEED,
    ONLINE_ACCOUNT,
    TAX_PRO_ACCOUNT,
)
from devstack import messages
from devstack.keys import ISSUER, DevKeys

DEADLINE_S = 60.0
EIN = "27-1830562"  # fictional
ENTITY_ID = f"ent-demo-{uuid.uuid4().hex[:8]}"
PIN_IN_LETTER = re.compile(r"PIN is ([2-9A-Z]{5}-[2-9A-Z]{5})")


class Person:
    def __init__(self, keys: DevKeys, label: str, ssn: str) -> None:
        self.keys = keys
        self.subject = f"demo-{label}-{uuid.uuid4().hex[:6]}"
        self.ssn = ssn

    def assertion(self, nonce: str) -> str:
        return self.keys.assertion(tin=self.ssn, nonce=nonce, subject=self.subject)

    def token(self) -> str:
        return self.keys.access_token(role="taxpayer", subject=self.subject, tin=self.ssn)


class BusinessDemo:
    """Runs the business flow on the demo's publishers; `events` and `notifications` are the
    demo's collected outcome stream (filled while this runs)."""

    def __init__(
        self,
        keys: DevKeys,
        publishers: Mapping[str, CafPublisher],
        seen: Callable[[], tuple[list[dict[str, Any]], list[dict[str, Any]]]],
    ) -> None:
        self.keys = keys
        self.portal = publishers[BUSINESS_TAX_ACCOUNT]
        self.practitioner_portal = publishers[TAX_PRO_ACCOUNT]
        self.online_account = publishers[ONLINE_ACCOUNT]
        self.entity_feed = publishers[ENTITY_FEED]
        self.seen = seen
        self.president = Person(keys, "president", "400-11-2233")
        self.stranger = Person(keys, "stranger", "400-55-6677")

    async def run(self, caf_number: str, api: str) -> None:
        print("\nA business gets a Designated Official (CP311) and approves a Tax Pro request:")
        await self.entity_feed.publish_entity(
            ENTITY_ID, messages.entity(ENTITY_ID, EIN, updated_at=datetime.now(UTC))
        )
        print(f"  entity feed: {ENTITY_ID} (a corporation, EIN ending {EIN[-4:]})")
        asked = await self._act(
            "do_pin_request", self.president, title="President", attests_authority=True
        )
        issued = await self._outcome(asked, "president asks to be Designated Official")
        letter = await self._until(
            lambda: [n for n in self.seen()[1] if n["event_id"] == issued["event_id"]]
        )
        found = PIN_IN_LETTER.search(letter[0]["body"]) if letter else None
        if found is None:
            print("  WARNING: no CP311 letter seen")
            return
        pin = found.group(1)
        print(
            f"  letter {letter[0]['template']} by {letter[0]['channel']} to the address of "
            f"record: PIN {'•' * 5}-{'•' * 3}{pin[-2:]} (only in the letter), valid through "
            f"{issued['expires_on']}"
        )
        sealed = seal_pin(pin, self.keys.pin_keys())
        await self._outcome(
            await self._act("do_pin_redeem", self.stranger, sealed_pin=sealed),
            "a stranger types the same PIN",
        )
        await self._outcome(
            await self._act("do_pin_redeem", self.president, sealed_pin=sealed),
            "the president redeems it",
        )
        first, second = self._tpa_request(caf_number), self._tpa_request(caf_number)
        for request in (first, second):
            await self.practitioner_portal.publish(request)
        await self._until(lambda: len(self._of_requests(first, second)) >= 2)
        print(f"  two Tax Pro Account requests from CAF {caf_number} wait for the business")
        await self.online_account.publish(self._decision(first, self.stranger))
        await self.online_account.publish(self._decision(second, self.president))
        for request, who in ((first, "the stranger"), (second, "the president")):
            ended = await self._until(functools.partial(self._ended, request))
            detail = (ended[0].get("reason_code") or "posted") if ended else "no outcome yet"
            print(f"  approval by {who}: {ended[0]['type'] if ended else '-'} ({detail})")
        await self._show_history(api)
        print(f"  (from the shell: cafctl officials show {ENTITY_ID})")

    async def _act(self, kind: str, person: Person, **fields: Any) -> dict[str, Any]:
        message_id = f"{kind}-{uuid.uuid4().hex[:10]}"
        message = {
            "kind": kind,
            "schema_version": 1,
            "message_id": message_id,
            "sent_at": datetime.now(UTC).isoformat(),
            "entity": {"tin": EIN, "tin_type": "EIN"},
            "identity_assertion": person.assertion(message_id),
            **fields,
        }
        await self.portal.publish(message)
        return message

    async def _outcome(self, message: dict[str, Any], label: str) -> dict[str, Any]:
        found = await self._until(
            lambda: [e for e in self.seen()[0] if e.get("message_id") == message["message_id"]]
        )
        event = found[0] if found else {"type": "no outcome yet"}
        detail = event.get("reason_code") or ""
        print(f"  {label:<42} -> {event['type']} {detail}")
        return event

    def _ended(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            e
            for e in self.seen()[0]
            if e.get("grant_id") == request["request_id"]
            and e["type"] in {"AuthorizationPosted", "AuthorizationRejected"}
        ]

    def _of_requests(self, *requests: dict[str, Any]) -> list[dict[str, Any]]:
        ids = {r["request_id"] for r in requests}
        return [
            e
            for e in self.seen()[0]
            if e["type"] == "AuthorizationPendingApproval" and e["grant_id"] in ids
        ]

    def _tpa_request(self, caf_number: str) -> dict[str, Any]:
        request = messages.tpa_request_now(
            messages.business(EIN),
            caf_number,
            licence_number=None,
            receive_notices=None,
            request_id=f"tpa-biz-{uuid.uuid4().hex[:8]}",
            form_number="1120",
        )
        return messages.document(request)

    def _decision(self, request: dict[str, Any], person: Person) -> dict[str, Any]:
        approval = messages.tpa_decision_now(
            request["request_id"], identity_assertion=person.assertion(request["request_id"])
        )
        return messages.document(approval)

    async def _show_history(self, api: str) -> None:
        """DO-08 on the read side: the president's businesses and one's authorizations."""
        headers = {"authorization": f"Bearer {self.president.token()}"}
        async with httpx.AsyncClient(base_url=api, timeout=10) as client:
            businesses: list[dict[str, Any]] = []
            for _ in range(50):
                answer = await client.get("/v1/officials/me/businesses", headers=headers)
                businesses = answer.json().get("businesses", []) if answer.is_success else []
                if businesses:
                    break
                await asyncio.sleep(0.3)
            if not businesses:
                print("  the read side does not show the business yet")
                return
            ref = businesses[0]["business_ref"]
            for _ in range(50):
                page = await client.get(
                    f"/v1/officials/me/businesses/{ref}/authorizations", headers=headers
                )
                grants = page.json().get("grants", []) if page.is_success else []
                if any(g["status"] == "active" for g in grants):
                    break
                await asyncio.sleep(0.3)
            statuses = ", ".join(sorted({g["status"] for g in grants}))
            print(
                f"  GET /v1/officials/me/businesses/…/authorizations as the president: "
                f"{len(grants)} grants ({statuses}); a stranger gets 404 (issuer {ISSUER})"
            )

    async def _until(self, found: Callable[[], Any]) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE_S
        while loop.time() < deadline:
            if value := found():
                return value
            await asyncio.sleep(0.2)
        return None
