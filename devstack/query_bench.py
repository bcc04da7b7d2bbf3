"""The authorization check's figures: throughput, and latency at fixed offered loads, of
`POST /v1/authorization-checks` served by the read side's own process over DynamoDB Local.

    python -m devstack.query_bench [--taxpayers 2000] [--rates 100,200,400] [--duration 10]

A fresh topic and table prefix gets `--taxpayers` posted grants (contract events on
`caf.events.v1`, one in five later partly revoked); `caf_query` runs as in `make up` and projects
them; the bench waits until the last event of every partition is answered, then:

- offered loads: requests at a fixed rate for `--duration` seconds each, every one timed from
  when it was due (so a stall counts against the server, not hidden by a waiting client), each
  a check by TIN (the path that pseudonymises it) of a random taxpayer, representative and year;
- throughput: `--clients` callers back to back for `--duration` seconds.

The server's CPU per check is its process CPU over the requests answered. `make bench` runs it
after the pipeline, on the same infrastructure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from caf_runtime.broker import client_options
from caf_runtime.config import ServiceSettings
from caf_runtime.secrets import key_bytes
from devstack.access import PROVISIONER
from devstack.figures import cpu_seconds, percentiles, progress
from devstack.fleet import Fleet, free_port, metric_samples
from devstack.keys import REF_KEY
from devstack.stack import PROJECT_ROOT, Stack
from schemas import topics
from schemas.codec import encode
from schemas.codes import ReasonCode
from schemas.events import AuthorizationPosted, AuthorizationRevoked, RecordedMatter
from schemas.ids import RefKeys

YEARS = (2021, 2022, 2023, 2024, 2025)


@dataclass(frozen=True)
class Taxpayer:
    tin: str
    ref: str
    caf_number: str
    years: tuple[int, ...]  # the years their grant covers now
    revoked: int | None  # the year a later revocation took, if one did


@dataclass(frozen=True)
class LoadFigures:
    offered_per_s: int
    answered: int
    errors: int
    wrong: int  # answers other than the stream says
    achieved_per_s: float
    latency_ms: dict[str, float]  # p50, p99, max


@dataclass(frozen=True)
class ReadSideFigures:
    """One way of answering, measured."""

    loads: list[LoadFigures]
    throughput_per_s: float
    server_cpu_ms_per_check: float
    authorized_share: float  # of the answers at offered loads, how many said POA
    from_memory: list[float]  # per offered load: of the taxpayer look-ups, the share memory took
    wrong_closed: int  # wrong answers in the closed loop
    seconds: float  # how long the measuring took


@dataclass(frozen=True)
class CheckFigures:
    taxpayers: int
    projected_s: float  # from the service's start until every partition was answered
    clients: int
    churn_per_s: float
    table: ReadSideFigures  # every check reads the table
    memory: ReadSideFigures  # as configured: memory first, invalidated by the stream


def _stream(
    count: int, refs: RefKeys, seed: int
) -> tuple[list[Taxpayer], list[AuthorizationPosted | AuthorizationRevoked]]:
    """`count` taxpayers, each with a posted grant for a range of years; one in five later has
    its first year revoked (MK-03)."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not a secret
    taxpayers: list[Taxpayer] = []
    events: list[AuthorizationPosted | AuthorizationRevoked] = []
    for index in range(count):
        tin = f"{100 + index % 600:03d}{10 + index // 600 % 89:02d}{rng.randint(1000, 9999):04d}"
        caf = f"07{rng.randint(0, 9_999_999):07d}"
        start = rng.randint(0, 2)
        years = YEARS[start : start + rng.randint(2, 3)]
        posted = _posted(
            ref=refs.ref(tin),
            tin=tin,
            caf=caf,
            name="Avery Smith",
            years=years,
            notices=bool(index % 2),
        )
        events.append(posted)
        if index % 5 == 0:
            kept = years[1:]
            events.append(
                AuthorizationRevoked(
                    **posted.model_dump(include=set(_GRANT_FIELDS)),
                    type="AuthorizationRevoked",
                    event_id=str(uuid.uuid4()),
                    message_id=str(uuid.uuid4()),
                    tax_matters=[_income(years[:1])],
                    remaining_matters=[_income(kept)],
                    revoked_by=ReasonCode.REV_BY_TAXPAYER,
                )
            )
            taxpayers.append(Taxpayer(tin, posted.taxpayer_ref, caf, kept, years[0]))
        else:
            taxpayers.append(Taxpayer(tin, posted.taxpayer_ref, caf, years, None))
    return taxpayers, events


# what a later event of the same grant repeats from its posting
_GRANT_FIELDS = (
    "grant_id",
    "authorization_id",
    "stage",
    "taxpayer_ref",
    "tin_last4",
    "form",
    "caf_number",
    "representative_name",
    "occurred_at",
)


def _posted(
    *, ref: str, tin: str, caf: str, name: str, years: tuple[int, ...], notices: bool
) -> AuthorizationPosted:
    """A contract `AuthorizationPosted` of a new grant of `caf` on `years`, now."""
    message, now = str(uuid.uuid4()), dt.datetime.now(dt.UTC)
    return AuthorizationPosted(
        type="AuthorizationPosted",
        event_id=str(uuid.uuid4()),
        message_id=message,
        grant_id=f"{message}:0",
        stage="caf_poster",
        authorization_id=message,
        taxpayer_ref=ref,
        tin_last4=tin[-4:],
        form="2848",
        caf_number=caf,
        representative_name=name,
        occurred_at=now,
        tax_matters=[_income(years)],
        receive_notices=notices,
        received_at=now,
        posted_at=now,
    )


def _income(years: tuple[int, ...]) -> RecordedMatter:
    return RecordedMatter(tax_type="Income", form_number="1040", periods=[str(y) for y in years])


@dataclass(frozen=True)
class Question:
    body: dict[str, Any]
    expected: str  # "POA" or "none": what the stream says


class Checker:
    """Checks against the API: one random question per call, its answer compared with what
    the published stream says it must be."""

    def __init__(self, token: str, taxpayers: list[Taxpayer]) -> None:
        self.client: httpx.AsyncClient  # the API measured: set by `_serve`
        self._headers = {"authorization": f"Bearer {token}"}
        self._taxpayers = taxpayers
        self._rng = random.Random(11)  # noqa: S311 - a reproducible workload
        self.authorized = 0
        self.wrong = 0

    def question(self) -> Question:
        taxpayer = self._rng.choice(self._taxpayers)
        year = self._rng.choice(YEARS)
        return _question(taxpayer, year)

    async def ask(self, question: Question) -> bool:
        """Whether the API answered (a wrong answer is counted in `wrong`)."""
        try:
            response = await self.client.post(
                "/v1/authorization-checks", json=question.body, headers=self._headers
            )
        except httpx.HTTPError:
            return False
        if response.status_code != 200:
            return False
        answer = response.json()["authorized"]
        self.authorized += answer == "POA"
        self.wrong += answer != question.expected
        return True

    async def expect(self, taxpayer: Taxpayer) -> bool:
        """Does the check already answer as the taxpayer's last event says (their first year
        covered; for a revocation, also the year it took)?"""
        asked = [_question(taxpayer, taxpayer.years[0])]
        if taxpayer.revoked is not None:
            asked.append(_question(taxpayer, taxpayer.revoked))
        for question in asked:
            response = await self.client.post(
                "/v1/authorization-checks", json=question.body, headers=self._headers
            )
            if response.status_code != 200 or response.json()["authorized"] != question.expected:
                return False
        return True


def _question(taxpayer: Taxpayer, year: int) -> Question:
    body = {
        "taxpayer_tin": taxpayer.tin,
        "caf_number": taxpayer.caf_number,
        "tax_type": "Income",
        "form_number": "1040",
        "period": str(year),
    }
    return Question(body, "POA" if year in taxpayer.years else "none")


async def _offered(checker: Checker, rate: int, duration: float) -> LoadFigures:
    """`rate` checks a second for `duration` s, each timed from when it was due."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors = 0
    total = int(rate * duration)
    started = loop.time()

    wrong_before = checker.wrong

    async def one(due: float) -> None:
        nonlocal errors
        ok = await checker.ask(checker.question())
        if ok:
            latencies.append((loop.time() - due) * 1000)
        else:
            errors += 1

    tasks = []
    for index in range(total):
        due = started + index / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - started
    quantiles = percentiles(latencies)
    return LoadFigures(
        offered_per_s=rate,
        answered=len(latencies),
        errors=errors,
        wrong=checker.wrong - wrong_before,
        achieved_per_s=len(latencies) / elapsed,
        latency_ms={
            "p50": quantiles["p50"],
            "p99": quantiles["p99"],
            "max": max(latencies, default=0.0),
        },
    )


async def _closed(checker: Checker, clients: int, duration: float) -> tuple[int, float]:
    """`clients` callers back to back for `duration` s: (answered, seconds)."""
    loop = asyncio.get_running_loop()
    stop = loop.time() + duration
    answered = 0

    async def caller() -> None:
        nonlocal answered
        while loop.time() < stop:
            if await checker.ask(checker.question()):
                answered += 1

    started = loop.time()
    await asyncio.gather(*(caller() for _ in range(clients)))
    return answered, loop.time() - started


class Churn:
    """Outcome events while the checks run, `per_s` a second, each for a random taxpayer: a grant
    to another representative, so every answer the bench expects stays as it is, but the
    taxpayer's views in memory are dropped and the projector writes the table, as in service."""

    def __init__(self, settings: ServiceSettings, people: list[Taxpayer], per_s: float) -> None:
        self._settings = settings
        self._people = people
        self._per_s = per_s
        self._rng = random.Random(17)  # noqa: S311 - a reproducible workload
        self._producer = AIOKafkaProducer(**client_options(settings), acks="all")
        self._task: asyncio.Task[None] | None = None
        self.sent = 0

    async def __aenter__(self) -> Churn:
        await self._producer.start()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._producer.stop()

    async def _run(self) -> None:
        while True:
            taxpayer = self._rng.choice(self._people)
            event = _posted(
                ref=taxpayer.ref,
                tin=taxpayer.tin,
                caf=f"08{self._rng.randint(0, 9_999_999):07d}",
                name="Blake Doe",
                years=YEARS,
                notices=False,
            )
            await self._producer.send(
                self._settings.topic(topics.EVENTS),
                encode(event),
                key=taxpayer.ref.encode(),
                headers=[("content-type", b"application/json")],
            )
            self.sent += 1
            await asyncio.sleep(1 / self._per_s)


@dataclass(frozen=True)
class Settings:
    """How the read side is measured."""

    rates: tuple[int, ...]
    duration: float
    clients: int
    churn_per_s: float  # outcome events a second while measuring


async def measure(
    stack: Stack,
    logs: Path,
    *,
    taxpayers: int = 2000,
    rates: tuple[int, ...] = (100, 200, 400),
    duration: float = 10.0,
    clients: int = 16,
    churn_per_s: float = 20.0,
) -> CheckFigures:
    """The read side over a fresh prefix: projected once, then measured reading the table on
    every check (`CAF_QUERY_CACHE_ENTRIES=0`) and as configured by default (memory first)."""
    prefix = f"qbench-{uuid.uuid4().hex[:6]}-"
    settings = stack.settings(prefix)
    await stack.prepare(settings)
    keys = stack.keys.ensure()
    refs = RefKeys((key_bytes(keys.secret(REF_KEY), REF_KEY),))
    people, events = _stream(taxpayers, refs, seed=3)
    progress(f"check: {len(events)} events of {taxpayers} taxpayers to {topics.EVENTS}")
    last = await _publish(settings, events, people)
    env = {
        **os.environ,
        **stack.environment(PROVISIONER),
        "CAF_TOPIC_PREFIX": prefix,
        "CAF_TABLE_PREFIX": prefix,
        "CAF_LOG_LEVEL": "WARNING",
    }
    how = Settings(rates, duration, clients, churn_per_s)
    token = keys.access_token(role="system", subject="bench", issued_at=dt.datetime.now(dt.UTC))
    started = time.monotonic()
    table_only = await _serve(
        Fleet(env | {"CAF_QUERY_CACHE_ENTRIES": "0"}, logs, identity=stack.service_identity),
        Checker(token, people),
        how,
        lambda checker: _caught_up(checker, list(last.values()), started),
        Churn(settings, people, churn_per_s),
    )
    projected = time.monotonic() - started - table_only.seconds
    memory = await _serve(
        Fleet(env, logs, identity=stack.service_identity),
        Checker(token, people),
        how,
        None,
        Churn(settings, people, churn_per_s),
    )
    return CheckFigures(taxpayers, projected, clients, churn_per_s, table_only, memory)


async def _serve(
    fleet: Fleet,
    checker: Checker,
    how: Settings,
    projected: Callable[[Checker], Awaitable[None]] | None,
    churn: Churn,
) -> ReadSideFigures:
    """Start the read side, wait until `projected` (if given), warm up, then the offered loads
    and the closed loop."""
    port = free_port()
    fleet.env["CAF_QUERY_API_PORT"] = str(port)
    replica = await fleet.start("caf_query")
    kind = "table" if fleet.env.get("CAF_QUERY_CACHE_ENTRIES") == "0" else "memory first"
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            timeout=30,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        ) as client:
            checker.client = client
            if projected is not None:
                await projected(checker)
            began = time.monotonic()
            shares: list[float] = []
            authorized: list[float] = []
            async with churn:
                loads = []
                for rate in how.rates:
                    progress(f"check ({kind}): warming up, then {rate} checks/s")
                    await _offered(checker, rate, 2.0)
                    checker.authorized = 0
                    before = metric_samples(port, "caf_query_taxpayer_lookups_total")
                    loads.append(await _offered(checker, rate, how.duration))
                    after = metric_samples(port, "caf_query_taxpayer_lookups_total")
                    shares.append(_memory_share(before, after))
                    authorized.append(checker.authorized / max(1, loads[-1].answered))
                progress(f"check ({kind}): {how.clients} callers back to back")
                cpu_before = cpu_seconds(replica.process.pid)
                answered, seconds = await _closed(checker, how.clients, how.duration)
                cpu = cpu_seconds(replica.process.pid) - cpu_before
    finally:
        await fleet.stop_all()
    return ReadSideFigures(
        loads=loads,
        throughput_per_s=answered / seconds,
        server_cpu_ms_per_check=cpu / answered * 1000 if answered else 0.0,
        authorized_share=sum(authorized) / len(authorized),
        from_memory=shares,
        wrong_closed=checker.wrong - sum(load.wrong for load in loads),
        seconds=time.monotonic() - began,
    )


def _memory_share(before: dict[str, float], after: dict[str, float]) -> float:
    """Of the look-ups between two readings of the counter, the share memory answered."""
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    total = sum(delta.values())
    memory = sum(v for k, v in delta.items() if 'source="memory"' in k)
    return memory / total if total else 0.0


async def _publish(
    settings: ServiceSettings, events: list[Any], people: list[Taxpayer]
) -> dict[int, Taxpayer]:
    """Publish the stream, keyed by taxpayer_ref; the last taxpayer of each partition."""
    producer = AIOKafkaProducer(**client_options(settings), acks="all", linger_ms=5)
    await producer.start()
    owner = {}
    index = -1
    for event in events:
        if isinstance(event, AuthorizationPosted):
            index += 1
        owner[event.event_id] = people[index]
    last: dict[int, Taxpayer] = {}
    try:
        pending = [
            (
                event,
                await producer.send(
                    settings.topic(topics.EVENTS),
                    encode(event),
                    key=event.taxpayer_ref.encode(),
                    headers=[("content-type", b"application/json")],
                ),
            )
            for event in events
        ]
        for event, delivery in pending:
            metadata = await delivery
            last[metadata.partition] = owner[event.event_id]
    finally:
        await producer.stop()
    return last


async def _caught_up(checker: Checker, last: list[Taxpayer], started: float) -> None:
    """Until the last taxpayer of every partition is answered as posted (events of a partition
    are applied in order, so every earlier one is too)."""
    waiting = list(last)
    while waiting:
        waiting = [t for t in waiting if not await checker.expect(t)]
        if time.monotonic() - started > 600:
            raise TimeoutError(f"the read side did not catch up: {len(waiting)} partitions")
        await asyncio.sleep(0.5)


def table(figures: CheckFigures) -> str:
    rows = [
        "| offered (checks/s) | answered/s | p50 (ms) | p99 (ms) | max (ms) | errors | wrong |"
        " answered/s | p50 (ms) | p99 (ms) | max (ms) | errors | wrong | from memory |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        "| | **table** | | | | | | **memory first** | | | | | | |",
    ]
    for table_load, memory_load, share in zip(
        figures.table.loads, figures.memory.loads, figures.memory.from_memory, strict=True
    ):
        rows.append(
            f"| {table_load.offered_per_s} |{_load(table_load)}{_load(memory_load)} {share:.0%} |"
        )
    table, memory = figures.table, figures.memory
    return (
        "\n".join(rows)
        + "\n\n| | table | memory first |\n|---|---:|---:|\n"
        + f"| throughput, {figures.clients} callers back to back (checks/s) |"
        f" {table.throughput_per_s:.0f} | **{memory.throughput_per_s:.0f}** |\n"
        f"| the server's CPU per check (ms) | {table.server_cpu_ms_per_check:.2f} |"
        f" {memory.server_cpu_ms_per_check:.2f} |\n"
        f"| wrong answers back to back | {table.wrong_closed} | {memory.wrong_closed} |\n"
        f"| answers that were POA | {table.authorized_share:.0%} |"
        f" {memory.authorized_share:.0%} |\n\n"
        f"Read model: {figures.taxpayers} taxpayers, projected from the earliest offset in"
        f" {figures.projected_s:.1f} s. While measuring, {figures.churn_per_s:.0f} outcome events"
        " a second for random taxpayers (grants to other representatives: no expected answer"
        " changes, but each drops that taxpayer from memory and is written to the table)."
        " Wrong: an answer other than the published stream says.\n"
    )


def _load(load: LoadFigures) -> str:
    ms = load.latency_ms
    return (
        f" {load.achieved_per_s:.0f} | {ms['p50']:.1f} | {ms['p99']:.1f} | {ms['max']:.1f} |"
        f" {load.errors} | {load.wrong} |"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--taxpayers", type=int, default=2000)
    parser.add_argument("--rates", default="100,200,400", help="offered loads, checks/s")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load")
    parser.add_argument("--clients", type=int, default=16, help="callers for throughput")
    parser.add_argument("--churn", type=float, default=20.0, help="outcome events/s meanwhile")
    return parser


def main() -> None:
    args = _parser().parse_args()
    stack = Stack()
    os.environ.update({k: v for k, v in stack.environment().items() if k.startswith("AWS_")})
    stack.start_infrastructure()
    logs = PROJECT_ROOT / ".devstack" / "bench" / time.strftime("query-%Y%m%d-%H%M%S")
    figures = asyncio.run(
        measure(
            stack,
            logs,
            taxpayers=args.taxpayers,
            rates=tuple(int(r) for r in args.rates.split(",")),
            duration=args.duration,
            clients=args.clients,
            churn_per_s=args.churn,
        )
    )
    print(table(figures))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
