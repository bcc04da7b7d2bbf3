"""The demo's protected-taxpayer flow (IP PIN program, PT-01 … PT-05): the program feed names a
taxpayer, a mailed 2848 for them is held, they are asked by mail and in Online Account, they
confirm with their identity assertion and the grant posts; a portal that sends an IP PIN is
refused and nothing of it is kept.

Printed: each step's outcome and the notices the hold caused (template, channel).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from caf_client import CafPublisher
from caf_runtime.authenticity import FORMS_INTAKE, IP_PIN_FEED, ONLINE_ACCOUNT
from caf_runtime.secrets import key_bytes
from devstack.keys import REF_KEY, DevKeys
from schemas.ids import RefKeys

DEADLINE_S = 60.0

Seen = Callable[[], tuple[list[dict[str, Any]], list[dict[str, Any]]]]


class ProtectedDemo:
    """Runs the flow on the demo's publishers; `seen` returns the collected events and
    notifications."""

    def __init__(self, keys: DevKeys, publishers: Mapping[str, CafPublisher], seen: Seen) -> None:
        self.keys = keys
        self.feed = publishers[IP_PIN_FEED]
        self.forms = publishers[FORMS_INTAKE]
        self.online_account = publishers[ONLINE_ACCOUNT]
        self.seen = seen
        self.refs = RefKeys((key_bytes(keys.secret(REF_KEY), "INTAKE_TAXPAYER_REF_KEY"),))

    async def run(self, form: dict[str, Any]) -> None:
        """`form`: a mailed 2848 for the taxpayer to protect."""
        print("\nA protected taxpayer (IP PIN program) confirms a mailed 2848 online:")
        tin = str(form["taxpayer"]["tin"])
        ref = self.refs.ref(tin.replace("-", ""))
        year = int(form["received_on"][:4])
        await self.feed.publish_protection(
            ref, {"taxpayer_ref": ref, "year": year, "basis": "identity_theft_victim"}
        )
        print(f"  IP PIN program feed: the taxpayer with TIN ending {tin[-4:]} ({year})")
        await self.forms.publish(form)
        grant_id = f"{form['message_id']}:0"
        held = await self._event(lambda e: e["grant_id"] == grant_id)
        if held is None:
            print("  WARNING: no outcome for the mailed 2848")
            return
        print(
            f"  mailed 2848 -> {held['type']} {held.get('reason_code', '')} "
            f"({held.get('rule_id', '')}), answer by {held.get('confirm_by')}"
        )
        await self._notices(held["event_id"])
        message_id = f"pc-demo-{uuid.uuid4().hex[:8]}"
        await self.online_account.publish(
            {
                "kind": "protected_confirmation",
                "schema_version": 1,
                "message_id": message_id,
                "sent_at": datetime.now(UTC).isoformat(),
                "grant_id": grant_id,
                "taxpayer": {"tin": tin, "tin_type": "SSN"},
                "decision": "confirm",
                "identity_assertion": self.keys.assertion(tin=tin, nonce=grant_id),
            }
        )
        posted = await self._event(
            lambda e: e["grant_id"] == grant_id and e["type"] != "AuthorizationHeld"
        )
        print(f"  the taxpayer confirms in Online Account -> {posted['type'] if posted else '-'}")
        refused_id = str(uuid.uuid4())
        await self.forms.publish(
            dict(form, message_id=refused_id, notes="IP PIN 000000 as the client gave it")
        )
        refused = await self._event(lambda e: e["message_id"] == refused_id)
        detail = refused.get("reason_code") if refused else "no outcome yet"
        print(f"  a form sent with the client's IP PIN -> {detail} (nothing of it kept)")

    async def _event(self, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        deadline = asyncio.get_running_loop().time() + DEADLINE_S
        while asyncio.get_running_loop().time() < deadline:
            found = [e for e in self.seen()[0] if wanted(e)]
            if found:
                return found[-1]
            await asyncio.sleep(0.2)
        return None

    async def _notices(self, event_id: str) -> None:
        for _ in range(50):
            notices = [n for n in self.seen()[1] if n["event_id"] == event_id]
            if len(notices) >= 2:
                break
            await asyncio.sleep(0.2)
        for notice in notices:
            who, how = notice["recipient"], notice["channel"]
            print(f"    notice {notice['template']} to the {who} by {how}")
