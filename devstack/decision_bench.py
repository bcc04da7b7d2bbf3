"""How long one poster decision takes over a large CAF (MK-06: linear in units, never pairwise).

    python -m devstack.decision_bench [--grants 200] [--units 200] [--rounds 50]

Builds one taxpayer holding `grants` active 2848 grants of different representatives, each on
the same `units` quarterly units (every unit held by every grant: the most overlap there can
be), then times deciding and applying a later-signed grant on all those units: it revokes a unit
of every grant (PO-05), checks the notice limit on each unit (PO-04) and the floors (RT-02).
Pure computation, no I/O: the figure is the rules' own cost. `make bench` includes it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from dataclasses import dataclass

from schemas.grants import MatterSpec, PostGrant, matters_of
from services.caf_poster.domain import Floor, Grant, TaxpayerCaf
from services.caf_poster.rules import apply, decide_posting

NOW = dt.datetime(2026, 11, 20, 19, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class DecisionFigures:
    grants: int
    units: int
    rounds: int
    median_ms: float
    p99_ms: float
    revoked_grants: int


def _specs(units: int) -> list[MatterSpec]:
    years = -(-units // 4)
    first = 2029 - years + 1
    return [MatterSpec(tax_type="Employment", form_number="941", periods=[f"{first} thru 2029"])]


def _command(n: int, signed: dt.date, specs: list[MatterSpec]) -> PostGrant:
    return PostGrant.model_validate(
        {
            "action": "post",
            "message_id": f"m-{n}",
            "taxpayer_ref": "a" * 32,
            "tin_last4": "6789",
            "form": "2848",
            "received_at": NOW,
            "grant_id": f"m-{n}:0",
            "authorization_id": f"m-{n}",
            "group_position": 0,
            "channel": "upload",
            "received_on": NOW.date(),
            "taxpayer_signature_date": signed,
            "caf_number": f"03{n:07d}",
            "representative_name": "Avery Smith",
            "designation": "b",
            "receive_notices": n < 2,
            "tax_matters": specs,
            "retain_prior": False,
            "specific_use": False,
            "first_time": False,
        },
        strict=False,
    )


def large_caf(grants: int, units: int) -> TaxpayerCaf:
    specs = _specs(units)
    matters = matters_of(specs)[:units]
    signed = dt.date(2026, 1, 1)
    held = tuple(
        Grant(
            grant_id=f"m-{n}:0",
            authorization_id=f"m-{n}",
            form="2848",
            caf_number=f"03{n:07d}",
            representative_name="Avery Smith",
            receive_notices=n < 2,
            signature_date=signed,
            matters=matters,
        )
        for n in range(grants)
    )
    floors = tuple(
        Floor(f"r-{n}", "2848", dt.date(2025, 1, 1), frozenset({f"03{n:07d}"}), None)
        for n in range(10)
    )
    return TaxpayerCaf(version=1, grants=held, floors=floors)


def measure(grants: int = 200, units: int = 200, rounds: int = 50) -> DecisionFigures:
    caf = large_caf(grants, units)
    command = _command(grants + 1, dt.date(2026, 6, 1), _specs(units))
    timings = []
    revoked = 0
    for _ in range(rounds):
        started = time.perf_counter()
        decision = decide_posting(caf, command, command.caf_number)
        apply(caf, decision)
        timings.append((time.perf_counter() - started) * 1000)
        revoked = len(decision.losses)
    cuts = statistics.quantiles(timings, n=100, method="inclusive")
    return DecisionFigures(
        grants, units, rounds, statistics.median(timings), cuts[98], revoked_grants=revoked
    )


def table(figures: DecisionFigures) -> str:
    return "\n".join(
        [
            "| CAF of one taxpayer | rounds | median (ms) | p99 (ms) | grants revoked |",
            "|---|---|---|---|---|",
            f"| {figures.grants} grants x {figures.units} units | {figures.rounds} "
            f"| {figures.median_ms:.1f} | {figures.p99_ms:.1f} | {figures.revoked_grants} |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.decision_bench", description=__doc__)
    parser.add_argument("--grants", type=int, default=200)
    parser.add_argument("--units", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    print(table(measure(args.grants, args.units, args.rounds)))


if __name__ == "__main__":
    main()
