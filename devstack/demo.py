"""`make demo`: publish a realistic mixed workload to the running stack and print what came out.

Workload (fictional people, dates relative to today): practitioner registry records; forms for
several taxpayers (a 2848 with three notice electors, an 8821, a first-time representative, a
suspended representative); a malformed message; then, once those are decided, a newer 2848 that
revokes part of an older one, a representative's withdrawal, and the taxpayer's decisions on
two Tax Pro Account requests (one approved, one declined). Every message is published through
the publisher SDK (`caf_client`), signed with the development key of its portal, and each decision
carries the taxpayer's identity assertion from the development identity provider. Two forgeries
show what the processor refuses: a form signed by a key nobody listed (AU-01, dead letter) and an
approval proven by another taxpayer's login (AU-02, rejected). It prints one line per grant with
its outcome and the notifications it caused, and the publish → posted latency. Last, a business
gets its Designated Official through the CP311 PIN and approves a Tax Pro Account request
(`devstack/demo_business.py`).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import uuid
from collections.abc import Callable, Iterable
from contextlib import AsyncExitStack
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, NamedTuple

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from joserfc.jwk import OKPKey

from caf_client import CafPublisher, KafkaConnection, SignedRecord, Signer
from caf_runtime.authenticity import ENTITY_FEED, IP_PIN_FEED, REGISTRY_FEED
from caf_runtime.broker import client_options
from caf_runtime.config import ServiceSettings
from cafctl import misuse
from devstack import messages
from devstack.demo_business import BusinessDemo
from devstack.demo_protected import ProtectedDemo
from devstack.keys import SIGNER_OF_KIND, DevKeys
from devstack.stack import Stack
from schemas import topics
from schemas.events import TERMINAL_TYPES
from schemas.inbound import Address, Channel, FormType
from schemas.registry import StatusCode

DEADLINE_S = 60.0
API = "http://127.0.0.1:8090"  # the read side as `make up` serves it
TODAY = messages.business_today()  # the day the rules count in (New York)
YEAR = TODAY.year

PRACTITIONERS: dict[str, tuple[str, StatusCode]] = {
    "030100101": ("Avery Smith", ""),
    "030100102": ("Blake Doe", ""),
    "030100103": ("Casey Roe", ""),
    "030100104": ("Drew Stone", "S"),
    "030100105": ("Emery Lee", ""),
}


def _form(
    tin: str,
    name: str,
    reps: list[dict[str, Any]],
    *,
    form: FormType = "2848",
    periods: Iterable[str] = (str(YEAR - 1),),
    signed: date = TODAY,
    channel: Channel = "upload",
) -> dict[str, Any]:
    """A form of taxpayer `tin` (`name`) received today, signed on `signed` as `channel` wants;
    `reps` name its representatives (`caf_number`, `name`, and a `ptin` or `receive_notices`)."""
    signature = messages.signature(signed, messages.method_for(channel))
    message = messages.submission(
        tin=tin,
        name=name,
        representatives=messages.representatives(
            form, reps, signed=signature, licence_number="CPA-100"
        ),
        form=form,
        channel=channel,
        received_on=TODAY,
        signed=signed,
        periods=list(periods),
        message_id=str(uuid.uuid4()),
        sent_at=datetime.now(UTC),
    )
    return messages.document(message)


# Fresh fictional TINs each run (same last four digits), so a rerun is new work, not IN-03.
_RUN = f"{random.randint(201, 665)}-{random.randint(10, 99)}"  # noqa: S311 - not a secret


_ONLINE_ADDRESS = Address(
    line1="2 Oak St", city="Nashville", state="TN", postal_code="37201", country="US"
)

FORGER = "forms-intake@forged"  # a kid no JWKS lists: its key is made up on the spot


class Sent(NamedTuple):
    """One demo message: what it shows, the message, and who signs it (default: its portal);
    `taxpayer` is the TIN whose login proves a decision (AU-02)."""

    label: str
    message: dict[str, Any] | bytes
    signer: str | None = None
    taxpayer: str | None = None


def tin(n: int) -> str:
    return f"{_RUN}-{n:04d}"


def first_wave() -> list[tuple[str, dict[str, Any] | bytes]]:
    rep = {caf: {"caf_number": caf, "name": name} for caf, (name, _) in PRACTITIONERS.items()}
    return [
        (
            "2848, three notice electors (third: PO-03)",
            _form(
                tin(1),
                "Jordan Public",
                [
                    rep["030100101"] | {"receive_notices": True},
                    rep["030100102"] | {"receive_notices": True},
                    rep["030100103"] | {"receive_notices": True},
                ],
            ),
        ),
        ("8821 designee", _form(tin(2), "Morgan Quinn", [rep["030100105"]], form="8821")),
        (
            "first-time representative (PO-08)",
            _form(
                tin(3),
                "Riley Park",
                # a PTIN of its own each run: CN-02 gives one number per PTIN, ever
                [
                    {
                        "caf_number": "None",
                        "name": "Sam New",
                        "ptin": f"P{uuid.uuid4().int % 10**8:08d}",
                    }
                ],
            ),
        ),
        ("suspended representative (VA-01)", _form(tin(4), "Taylor Moss", [rep["030100104"]])),
        (
            "older 2848, to be partly revoked",
            _form(
                tin(5),
                "Avery Client",
                [rep["030100101"]],
                periods=[str(YEAR - 2), str(YEAR - 1)],
                signed=TODAY - timedelta(days=10),
            ),
        ),
        ("2848, to be withdrawn", _form(tin(6), "Quinn Harper", [rep["030100105"]])),
        ("malformed message (IN-01)", b'{"kind": "submission", "message_id": broken'),
        ("Tax Pro Account request (NO-01)", TPA_APPROVED),
        ("Tax Pro Account request (NO-01)", TPA_DECLINED),
        *(("Tax Pro Account group request (NO-01)", request) for request in TPA_GROUP),
        ("Tax Pro Account request, someone else approves it", TPA_IMPOSTOR),
    ]


def _tpa_request(n: int, caf: str, name: str, group_id: str | None = None) -> dict[str, Any]:
    request = messages.tpa_request_now(
        messages.individual(tin(n), name="Casey Online", address=_ONLINE_ADDRESS),
        caf,
        name=name,
        licence_number="EA-1",
        request_id=f"tpa-{uuid.uuid4().hex[:8]}",
        group_id=group_id,
        today=TODAY,
    )
    return messages.document(request)


def _decision(
    request: dict[str, Any],
    decision: Literal["approve", "decline"],
    signed: date = TODAY,
    at_offset_s: float = 0,
) -> dict[str, Any]:
    """A decision; its identity assertion is added when it is sent (`Demo._publish`)."""
    at = datetime.now(UTC) + timedelta(seconds=at_offset_s)
    made = messages.tpa_decision_now(request["request_id"], decision, signed=signed, at=at)
    return messages.document(made)


TPA_APPROVED = _tpa_request(7, "030100102", "Blake Doe")
TPA_DECLINED = _tpa_request(8, "030100103", "Casey Roe")
TPA_IMPOSTOR = _tpa_request(11, "030100101", "Avery Smith")
_GROUP = f"grp-{uuid.uuid4().hex[:6]}"
TPA_GROUP = [
    _tpa_request(9, caf, name, group_id=_GROUP)
    for caf, name in (
        ("030100101", "Avery Smith"),
        ("030100102", "Blake Doe"),
        ("030100105", "Emery Lee"),
        ("030100103", "Casey Roe"),
    )
]


def second_wave() -> list[Sent]:
    forms = [
        Sent(
            "a form signed by a key nobody listed (AU-01)",
            _form(tin(10), "Pat Forger", [{"caf_number": "030100101", "name": "Avery Smith"}]),
            signer=FORGER,
        ),
        Sent(
            "approval proven by another taxpayer's login (AU-02)",
            _decision(TPA_IMPOSTOR, "approve"),
            taxpayer=tin(12),
        ),
    ]
    return forms + [Sent(*item) for item in _second_wave()]


def _second_wave() -> list[tuple[str, dict[str, Any] | bytes]]:
    return [
        ("Tax Pro Account request, approved", _decision(TPA_APPROVED, "approve")),
        ("Tax Pro Account request, declined", _decision(TPA_DECLINED, "decline")),
        # a group: approvals reach us last-approved first; decided in approval order (PO-03)
        (
            "group, approved 4th, signed a day earlier (PO-02)",
            _decision(TPA_GROUP[3], "approve", TODAY - timedelta(days=1), at_offset_s=0.9),
        ),
        (
            "group, approved 3rd: third notice elector (PO-03)",
            _decision(TPA_GROUP[2], "approve", at_offset_s=0.6),
        ),
        ("group, approved 2nd", _decision(TPA_GROUP[1], "approve", at_offset_s=0.3)),
        ("group, approved 1st", _decision(TPA_GROUP[0], "approve")),
        (
            "newer 2848 revokes the older on overlap (PO-05)",
            _form(
                tin(5),
                "Avery Client",
                [{"caf_number": "030100102", "name": "Blake Doe"}],
                periods=[str(YEAR - 1)],
            ),
        ),
        (
            "withdrawal by the representative (PO-09)",
            messages.document(
                messages.withdrawal(
                    "0301-00105R",
                    tin=tin(6),
                    signed=messages.signature(TODAY, "checkbox"),
                    message_id=str(uuid.uuid4()),
                    sent_at=datetime.now(UTC),
                )
            ),
        ),
    ]


class Demo:
    """`settings` (the operator's principal) read the outcome; `connections` give each portal
    its own Kafka principal (`portal`, `registry-feed`)."""

    def __init__(
        self,
        settings: ServiceSettings,
        keys: DevKeys,
        connections: Callable[[str], KafkaConnection],
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.connections = connections
        self.sent_at: dict[str, int] = {}
        self.labels: dict[str, str] = {}
        self.events: list[tuple[ConsumerRecord[bytes, bytes], dict[str, Any]]] = []
        self.notifications: list[dict[str, Any]] = []
        self.dead_letters: list[ConsumerRecord[bytes, bytes]] = []
        self.tins: dict[str, str] = {}  # message_id -> the TIN it names (to ask the API)

    async def run(self) -> int:
        signers = {kid: self.keys.signer(kid) for kid in set(SIGNER_OF_KIND.values())}
        signers[FORGER] = Signer(OKPKey.generate_key("Ed25519", parameters={"kid": FORGER}))
        collector = asyncio.create_task(self._collect())
        async with AsyncExitStack() as portals:
            publishers = {
                kid: await portals.enter_async_context(
                    CafPublisher(
                        signer,
                        self.connections(
                            kid if kid in {REGISTRY_FEED, ENTITY_FEED, IP_PIN_FEED} else "portal"
                        ),
                        topic_prefix=self.settings.topic_prefix,
                    )
                )
                for kid, signer in signers.items()
            }
            try:
                registry = publishers[SIGNER_OF_KIND["registry"]]
                for caf, (name, status) in PRACTITIONERS.items():
                    record = messages.practitioner(
                        caf,
                        name,
                        status_code=status,
                        designations=["b", "c"],
                        jurisdiction=None,
                        licence_number=None,
                        ptin=None,
                        ptin_valid_through=None,
                        afsp_years=None,
                        updated_at=datetime.now(UTC),
                    )
                    await registry.publish_registry(caf, messages.document(record))
                print(f"published {len(PRACTITIONERS)} signed practitioner registry records")
                for wave in ([Sent(*item) for item in first_wave()], second_wave()):
                    expected = await self._publish(publishers, wave)
                    await self._wait_for(expected)
                await asyncio.sleep(1.0)  # let the notifier catch up with the last events
                self._print()
                await self._ask_the_api()
                business = BusinessDemo(
                    self.keys,
                    publishers,
                    lambda: ([e for _, e in self.events], self.notifications),
                )
                await business.run(next(iter(PRACTITIONERS)), API)
                protected = ProtectedDemo(
                    self.keys,
                    publishers,
                    lambda: ([e for _, e in self.events], self.notifications),
                )
                caf, (name, _) = next(iter(PRACTITIONERS.items()))
                rep = {"caf_number": caf, "name": name}
                await protected.run(_form(tin(90), "Casey Shield", [rep], channel="mail"))
                await self._statement(caf)
            finally:
                collector.cancel()
                await asyncio.gather(collector, return_exceptions=True)
        return 0

    async def _statement(self, caf_number: str) -> None:
        """MN-07 on demand: the misuse monitor sends the practitioner the statement of their
        active grants (what `cafctl statements send --caf` does, as the operator)."""
        print(f"\nThe annual review statement of CAF {caf_number} (cafctl statements send):")
        run = await misuse.statement_run(self.settings, "demo", [caf_number])
        prefix = f"statement:{run.command_id}:"
        pages: list[dict[str, Any]] = []
        for _ in range(150):
            pages = [n for n in self.notifications if n["event_id"].startswith(prefix)]
            if pages:
                break
            await asyncio.sleep(0.2)
        if not pages:
            print("  no statement yet (is the monitor running? make status)")
            return
        lines = pages[0]["body"].splitlines()
        for line in lines[:5]:
            print(f"  {line}")
        if len(lines) > 5:
            print(f"  … ({len(pages)} page(s); suspected misuse: cafctl misuse list)")

    async def _ask_the_api(self) -> None:
        """What the authorization API answers now of the posted grants (and of what a later
        form or a revocation took), and what one practitioner sees of theirs."""
        posted = [e for _, e in self.events if e["type"] == "AuthorizationPosted"]
        revoked = [e for _, e in self.events if e["type"] == "AuthorizationRevoked"]
        ended = {e["grant_id"] for _, e in self.events if e["type"] == "AuthorizationWithdrawn"}
        questions = [
            (e, "none" if e["grant_id"] in ended else "POA" if e["form"] == "2848" else "TIA")
            for e in posted[:5]
        ]
        questions += [(e, "none") for e in revoked[:2] if e.get("tax_matters")]
        questions = [(e, want) for e, want in questions if e["message_id"] in self.tins]
        if not questions:
            return
        system = self.keys.access_token(role="system", subject="demo")
        async with httpx.AsyncClient(base_url=API, timeout=10) as client:
            print(f"\nThe authorization API at {API} (POST /v1/authorization-checks):")
            for event, wanted in questions:
                matter = event["tax_matters"][0]
                question = {
                    "taxpayer_tin": self.tins[event["message_id"]],
                    "caf_number": event["caf_number"],
                    "tax_type": matter["tax_type"],
                    "form_number": matter["form_number"],
                    "period": matter["periods"][0],
                }
                answer = await _until_answered(client, system, question, wanted)
                print(
                    f"  ...{event['tin_last4']} CAF {event['caf_number']} {matter['tax_type']}"
                    f" {matter['form_number']} {matter['periods'][0]:<8}"
                    f" -> {answer.get('authorized')}"
                    f"{' (receives notices)' if answer.get('receives_notices') else ''}"
                    f"   [{_story(event, ended)}]"
                )
            caf = questions[0][0]["caf_number"]
            token = self.keys.access_token(role="practitioner", subject="demo", caf_number=caf)
            mine = await client.get(
                "/v1/practitioners/me/authorizations", headers={"authorization": f"Bearer {token}"}
            )
            statuses = [g["status"] for g in mine.json().get("grants", [])]
            print(
                f"  practitioner {caf} sees {len(statuses)} grants"
                f" ({', '.join(sorted(set(statuses)))}); in a browser: {API}/ui"
            )
            await self._show_evidence(client, posted)

    async def _show_evidence(self, client: httpx.AsyncClient, posted: list[dict[str, Any]]) -> None:
        """ES-05: the signature evidence of an approved Tax Pro Account grant, read back from
        the object store and hashed again (an employee read, audited)."""
        tpa = [e for e in posted if e.get("channel") == "tpa" and e.get("signature_refs")]
        if not tpa:
            return
        grant = tpa[0]["grant_id"]
        token = self.keys.access_token(role="employee", subject="demo")
        for _ in range(50):  # the read side follows the outcome stream a moment behind
            answer = await client.post(
                "/v1/employee/grant-signatures",
                json={"grant_id": grant, "reason": "demo: show the signature evidence"},
                headers={"authorization": f"Bearer {token}"},
            )
            if answer.status_code != 404:
                break
            await asyncio.sleep(0.3)
        if answer.status_code != 200:
            print(f"  signature evidence of {grant}: HTTP {answer.status_code}")
            return
        print(f"\nSignature evidence of TPA grant {grant} (POST /v1/employee/grant-signatures):")
        for found in answer.json()["signatures"]:
            print(
                f"  {found['role']:<14} {found['act']:<13} sha256 {found['sha256'][:16]}…"
                f" locked {found['lock_mode']} until {str(found['retain_until'])[:10]}"
                f" verified={found['verified']}"
            )
        print(f"  (from the shell: cafctl signatures show {grant} --operator NAME --why CASE)")

    async def _publish(self, publishers: dict[str, CafPublisher], wave: list[Sent]) -> set[str]:
        """Publish each message signed by its portal (or its forger); the ids whose outcome
        the demo waits for."""
        expected: set[str] = set()
        for sent in wave:
            message = sent.message
            if isinstance(message, bytes):  # unreadable, but signed by the upload portal
                publisher = publishers[SIGNER_OF_KIND["submission"]]
                await publisher.send(_raw_record(publisher, message))
                continue
            if message.get("kind") == "tpa_decision":
                proof = self.keys.assertion(
                    tin=sent.taxpayer or _taxpayer_of(message["request_id"]),
                    nonce=message["request_id"],
                )
                message = message | {"identity_assertion": proof}
            publisher = publishers[sent.signer or SIGNER_OF_KIND[message["kind"]]]
            published = await publisher.publish(message)
            self.labels[message["message_id"]] = sent.label
            if isinstance(message.get("taxpayer"), dict) and message["taxpayer"].get("tin"):
                self.tins[message["message_id"]] = str(message["taxpayer"]["tin"])
            if sent.signer is None:  # a forgery has no outcome to wait for: a dead letter
                expected.add(message["message_id"])
            self.sent_at[message["message_id"]] = published.timestamp
        print(f"published {len(wave)} signed inbound messages")
        return expected

    async def _wait_for(self, message_ids: set[str]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE_S
        while loop.time() < deadline:
            done = {
                e["message_id"]
                for _, e in self.events
                if e["type"]
                in TERMINAL_TYPES | {"AuthorizationWithdrawn", "AuthorizationPendingApproval"}
            }
            if message_ids <= done:
                return
            await asyncio.sleep(0.2)
        print("WARNING: not every message reached an outcome before the deadline")

    async def _collect(self) -> None:
        names = {
            self.settings.topic(t): t
            for t in (topics.EVENTS, topics.NOTIFICATIONS, topics.INBOUND_DLQ)
        }
        consumer = AIOKafkaConsumer(
            *names,
            **client_options(self.settings),
            auto_offset_reset="latest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            await consumer.seek_to_end()
            while True:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for record in records:
                        topic = names[record.topic]
                        if topic == topics.INBOUND_DLQ:
                            self.dead_letters.append(record)
                        elif topic == topics.EVENTS and record.value:
                            self.events.append((record, json.loads(record.value)))
                        elif record.value:
                            self.notifications.append(json.loads(record.value))
        finally:
            await consumer.stop()

    def _print(self) -> None:
        notes: dict[str, list[str]] = {}
        for note in self.notifications:
            notes.setdefault(note["event_id"], []).append(f"{note['recipient']}:{note['template']}")
        print("\nPer grant (TIN shown as last 4 digits only):")
        latencies = []
        seen: set[str] = set()
        for record, event in self.events:
            if event["event_id"] in seen:
                continue
            seen.add(event["event_id"])
            label = self.labels.get(event["message_id"], "")
            detail = event.get("reason_code") or event.get("revoked_by") or ""
            if event["type"] == "AuthorizationPosted":
                periods = ";".join(",".join(m["periods"]) for m in event["tax_matters"])
                detail = f"periods {periods}"
                if event["message_id"] in self.sent_at:
                    latencies.append(record.timestamp - self.sent_at[event["message_id"]])
            if event["type"] == "CafNumberAssigned":
                detail = f"CAF {event['caf_number']}"
            sent = ", ".join(notes.get(event["event_id"], [])) or "-"
            print(
                f"  {event['grant_id'][:40]:<40} ...{event['tin_last4'] or '----'} "
                f"{event['type']:<26} {detail:<26} -> {sent}   [{label}]"
            )
        for dead in self.dead_letters:
            headers = {k: v.decode() for k, v in dead.headers}
            print(
                f"  dead letter from {headers['original-topic']} offset "
                f"{headers['original-offset']}: {headers['error-class']}: "
                f"{headers['error-message'][:60]}"
            )
        if latencies:
            ordered = sorted(latencies)
            p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
            print(
                f"\npublish -> AuthorizationPosted over {len(ordered)} grants: "
                f"p50 {statistics.median(ordered):.0f} ms, p99 {p99:.0f} ms"
            )


def _story(event: dict[str, Any], withdrawn: set[str]) -> str:
    """What happened to the grant the question is about, as the demo saw it."""
    if event["type"] == "AuthorizationRevoked":
        return "that year revoked by a newer form"
    return "posted, then withdrawn" if event["grant_id"] in withdrawn else "posted"


async def _until_answered(
    client: httpx.AsyncClient, token: str, question: dict[str, Any], wanted: str
) -> dict[str, Any]:
    """The check's answer, once it is `wanted` or after 15 s (the read side follows the
    outcome stream a moment behind the demo's own reader)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while True:
        response = await client.post(
            "/v1/authorization-checks", json=question, headers={"authorization": f"Bearer {token}"}
        )
        answer: dict[str, Any] = response.json() if response.status_code == 200 else {}
        if answer.get("authorized") == wanted or loop.time() > deadline:
            return answer or {"authorized": f"HTTP {response.status_code}"}
        await asyncio.sleep(0.3)


def _taxpayer_of(request_id: str) -> str:
    """The TIN of the taxpayer a demo TPA request names: the one whose login approves it."""
    for request in (TPA_APPROVED, TPA_DECLINED, TPA_IMPOSTOR, *TPA_GROUP):
        if request["request_id"] == request_id:
            return str(request["taxpayer"]["tin"])
    raise KeyError(request_id)


def _raw_record(publisher: CafPublisher, value: bytes) -> SignedRecord:
    return SignedRecord(
        topics.INBOUND, str(uuid.uuid4()).encode(), value, publisher.signer.headers(value)
    )


def main() -> int:
    stack = Stack()
    settings = ServiceSettings.model_validate({**os.environ, **stack.environment("operator")})

    def connection(principal: str) -> KafkaConnection:
        if stack.secured:  # the stack's own broker: each client as its own principal
            return KafkaConnection.from_properties(
                stack.root / "clients" / f"{principal}.properties"
            )
        password = settings.kafka_sasl_password  # an external cluster: as configured
        return KafkaConnection(
            settings.kafka_bootstrap_servers,
            settings.kafka_security_protocol,
            settings.kafka_sasl_mechanism,
            settings.kafka_sasl_username,
            password.get_secret_value() if password else None,
            settings.kafka_ssl_cafile,
        )

    return asyncio.run(Demo(settings, stack.keys, connection).run())


if __name__ == "__main__":
    sys.exit(main())
