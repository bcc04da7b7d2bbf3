"""A mixed, realistic inbound workload for fault-injection and benchmark runs.

Fictional taxpayers (a fresh SSN each), a registry of practitioners in good standing sized so
that no CAF number reaches the velocity limit (VA-07), and a stream of units, each about one
taxpayer: clean forms with one to three representatives (2848 and 8821, registered and first-time
representatives), forms that intake rejects, Tax Pro Account requests later approved or declined,
forms later withdrawn by their representative or revoked by the taxpayer, a newer form revoking an
older one (PO-05), a form sent twice with the same message id (IN-02) and malformed bytes (IN-01).
Follow-ups (decisions, withdrawals, revocations, resends) are placed `gap` messages later, the way
they reach us in real life: after the first message has usually been decided.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from caf_client.publisher import SignedRecord, signed_record, signed_registry_record
from devstack import messages
from devstack.keys import DevKeys
from devstack.messages import CAF_NUMBER
from schemas import topics
from schemas.inbound import FormType

TODAY = messages.business_today()  # the day the rules count in (New York)
YEAR = TODAY.year
MIX: dict[str, int] = {  # weight of each unit kind
    "form": 46,
    "form_rejected": 5,
    "tpa_approved": 12,
    "tpa_declined": 4,
    "withdrawn": 9,
    "revoked": 9,
    "superseded": 5,
    "resent": 5,
    "malformed": 2,
}
_GRANTS_PER_PRACTITIONER = 12  # well under VA-07's 25 distinct taxpayers per hour


@dataclass(frozen=True)
class Message:
    """One inbound message as published: its key and bytes or JSON document; for a Tax Pro
    Account decision, the taxpayer whose identity assertion it carries (minted when sent)."""

    key: str | None
    body: dict[str, Any] | bytes
    kind: str
    taxpayer_tin: str | None = None

    def value(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()


def signed_inbound(message: Message, keys: DevKeys) -> SignedRecord:
    """The message as a record of `caf.inbound.v1` signed by the development publisher of its
    kind (AU-01); a decision gets its taxpayer's identity assertion, issued now (AU-02)."""
    body = message.body
    if isinstance(body, dict) and body.get("kind") == "tpa_decision" and message.taxpayer_tin:
        proof = keys.assertion(tin=message.taxpayer_tin, nonce=str(body["request_id"]))
        body = body | {"identity_assertion": proof}
    if isinstance(body, bytes):
        return SignedRecord(
            topics.INBOUND,
            message.key.encode() if message.key else None,
            body,
            keys.signer_for("submission").headers(body),
        )
    return signed_record(keys.signer_for(str(body["kind"])), body)


def signed_registry(record: dict[str, Any], keys: DevKeys) -> SignedRecord:
    """A practitioner record signed by the development registry feed (AU-01)."""
    return signed_registry_record(keys.signer_for("registry"), record["caf_number"], record)


@dataclass
class Workload:
    """About `size` inbound messages (at least `size`: the last units keep their follow-ups) and
    the registry they need, reproducible from `seed`."""

    size: int
    seed: int = 7
    gap: int = 300
    practitioners: int = 0  # the registry's size; 0: enough for `size` (VA-07)
    registry: list[dict[str, Any]] = field(init=False)
    messages: list[Message] = field(init=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)  # noqa: S311 - test data, not secrets
        self._tins: set[str] = set()
        practitioners = self.practitioners or max(20, self.size // _GRANTS_PER_PRACTITIONER)
        self.registry = [self._practitioner(n) for n in range(practitioners)]
        self.messages = self._stream()

    def _stream(self) -> list[Message]:
        slots: list[list[Message]] = []
        index = 0
        kinds, weights = zip(*MIX.items(), strict=True)
        while index < self.size:
            kind = self._random.choices(kinds, weights)[0]
            first, *later = getattr(self, f"_unit_{kind}")()
            self._place(slots, index, first)
            for follow_up in later:
                self._place(slots, index + self.gap + self._random.randint(0, self.gap), follow_up)
            index += 1 + len(later)
        return [message for slot in slots for message in slot]

    @staticmethod
    def _place(slots: list[list[Message]], index: int, message: Message) -> None:
        while len(slots) <= index:
            slots.append([])
        slots[index].append(message)

    # --- units -------------------------------------------------------------------------------

    def _unit_form(self) -> list[Message]:
        return [self._form(self._tin(), self._reps(self._random.randint(1, 3)))]

    def _unit_form_rejected(self) -> list[Message]:
        form = self._form(self._tin(), self._reps(1), periods=["All years"])  # IN-13
        return [Message(form.key, form.body, "form_rejected")]

    def _unit_tpa_approved(self) -> list[Message]:
        request = self._tpa_request()
        return [request, self._decision(request, "approve")]

    def _unit_tpa_declined(self) -> list[Message]:
        request = self._tpa_request()
        return [request, self._decision(request, "decline")]

    def _unit_withdrawn(self) -> list[Message]:
        tin, rep = self._tin(), self._registered()
        form = self._form(tin, [rep], form="2848")
        withdrawal = self._removal(
            "withdrawal", tin, caf_number=f"{rep['caf_number'][:4]}-{rep['caf_number'][4:]}R"
        )
        return [form, withdrawal]

    def _unit_revoked(self) -> list[Message]:
        tin = self._tin()
        form = self._form(tin, self._reps(2), form="2848")
        return [form, self._removal("revocation", tin)]

    def _unit_superseded(self) -> list[Message]:
        tin = self._tin()
        older = self._form(tin, self._reps(1), form="2848", signed=TODAY - timedelta(days=10))
        return [older, self._form(tin, self._reps(1), form="2848")]

    def _unit_resent(self) -> list[Message]:
        form = self._form(self._tin(), self._reps(1))
        return [form, Message(form.key, form.body, "resent")]

    def _unit_malformed(self) -> list[Message]:
        broken = b'{"kind": "submission", "message_id": "' + uuid.uuid4().hex.encode() + b'", '
        return [Message(None, broken, "malformed")]

    # --- builders ----------------------------------------------------------------------------

    def _tin(self) -> str:
        while True:
            tin = (
                f"{self._random.randint(100, 665):03d}-{self._random.randint(10, 99):02d}-"
                f"{self._random.randint(1, 9999):04d}"
            )
            if tin not in self._tins:
                self._tins.add(tin)
                return tin

    def _practitioner(self, n: int) -> dict[str, Any]:
        record = messages.practitioner(
            f"03{self.seed % 100:02d}{n:05d}",
            f"Practitioner {n}",
            designations=["a", "b", "c"],
            licence_number=f"CPA-{n}",
            ptin=f"P{self.seed % 100:02d}{n:06d}",
            ptin_valid_through=date(YEAR + 1, 12, 31),
            afsp_years=[YEAR - 2, YEAR - 1, YEAR],
            updated_at=datetime.now(UTC),
        )
        return messages.document(record)

    def _registered(self) -> dict[str, Any]:
        practitioner = self._random.choice(self.registry)
        return {"caf_number": practitioner["caf_number"], "name": practitioner["name"]}

    def _reps(self, count: int) -> list[dict[str, Any]]:
        reps = []
        chosen: set[str] = set()
        for n in range(count):
            if self._random.random() < 0.7:
                rep = self._registered()
                if rep["caf_number"] in chosen:
                    continue
                chosen.add(rep["caf_number"])
            else:
                newcomer = self._random.randrange(10**8)  # one PTIN per new representative
                rep = {
                    "caf_number": None,
                    "name": f"New Representative {newcomer}",
                    "ptin": f"P{newcomer:08d}",
                }
            reps.append(rep | {"receive_notices": n == 0 and self._random.random() < 0.5})
        return reps

    def _form(
        self,
        tin: str,
        reps: list[dict[str, Any]],
        *,
        form: FormType | None = None,
        signed: date = TODAY,
        periods: Sequence[str] = (str(YEAR - 1),),
    ) -> Message:
        form = form or ("2848" if self._random.random() < 0.8 else "8821")
        representatives = messages.representatives(
            form, reps, signed=messages.signature(signed), licence_number="CPA-100"
        )
        submission = messages.submission(
            tin=tin,
            name="Jordan Public",
            representatives=representatives,
            form=form,
            received_on=TODAY,
            signed=signed,
            periods=periods,
            message_id=str(uuid.uuid4()),
            sent_at=datetime.now(UTC),
        )
        body = messages.document(submission)
        return Message(body["message_id"], body, "form")

    def _tpa_request(self) -> Message:
        rep = self._registered()
        request = messages.tpa_request(
            taxpayer=messages.individual(self._tin(), name="Jordan Public"),
            representative=messages.tax_professional(
                caf_number=rep["caf_number"],
                name=rep["name"],
                licence_number="EA-1",
                signed=messages.online_signature(TODAY),
            ),
            message_id=str(uuid.uuid4()),
            sent_at=datetime.now(UTC),
            request_id=f"tpa-{uuid.uuid4().hex[:12]}",
            received_on=TODAY,
            periods=[str(YEAR - 1)],
        )
        body = messages.document(request)
        return Message(body["request_id"], body, "tpa_request")  # CONTRACT: TPA key is request_id

    @staticmethod
    def _decision(request: Message, decision: Literal["approve", "decline"]) -> Message:
        """A decision; `signed_inbound` adds its identity assertion when it is sent."""
        assert isinstance(request.body, dict)
        made = messages.tpa_decision(
            request.body["request_id"],
            decision,
            signed=messages.online_signature(TODAY, at=datetime.now(UTC)),
            message_id=str(uuid.uuid4()),
            sent_at=datetime.now(UTC),
        )
        body = messages.document(made)
        tin = request.body["taxpayer"]["tin"]
        return Message(body["request_id"], body, f"tpa_{decision}", taxpayer_tin=tin)

    @staticmethod
    def _removal(kind: str, tin: str, caf_number: str = CAF_NUMBER) -> Message:
        """A withdrawal of `caf_number`, else a revocation of all; in the class body the field
        `messages` hides the module, hence `CAF_NUMBER` imported by name."""
        made = messages.removal(
            kind,
            caf_number=caf_number,
            tin=tin,
            signed=messages.signature(TODAY, "checkbox"),
            message_id=str(uuid.uuid4()),
            sent_at=datetime.now(UTC),
        )
        body = messages.document(made)
        return Message(body["message_id"], body, kind)

    def counts(self) -> dict[str, int]:
        """Messages by kind."""
        found: dict[str, int] = {}
        for message in self.messages:
            found[message.kind] = found.get(message.kind, 0) + 1
        return found

    def __iter__(self) -> Iterator[Message]:
        return iter(self.messages)
