"""What authenticity costs per message: CPU to verify a record's detached JWS (AU-01) and a
decision's identity assertion (AU-02), on real contract messages with the development keys.

    python -m devstack.auth_bench [--rounds 2000]

Measures process CPU time (not wall time) of the verifier intake runs, `RecordVerifier.verify`
(header parsing, key lookup by kid, Ed25519 verification, allow-list by kind) on a typical
submission, and of `check_assertion` (JWT signature and every claim check) on a fresh assertion.
`make bench` includes it, beside the pipeline's own CPU per message.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiokafka import ConsumerRecord

from caf_runtime.authenticity import DEFAULT_ALLOW, JwksSource, RecordVerifier
from devstack.keys import DevKeys
from devstack.workload import Workload, signed_inbound
from services.intake.identity import Asserted, check_assertion


@dataclass(frozen=True)
class AuthFigures:
    rounds: int
    value_bytes: int
    record_us: float  # CPU per record signature verified
    assertion_us: float  # CPU per identity assertion checked
    sign_us: float  # CPU per record signed (the publisher's side)


def _cpu_us(rounds: int, work: Callable[[], object]) -> float:
    started = time.process_time()
    for _ in range(rounds):
        work()
    return (time.process_time() - started) / rounds * 1e6


def measure(rounds: int = 2000) -> AuthFigures:
    with tempfile.TemporaryDirectory() as folder:
        keys = DevKeys(Path(folder) / "keys").ensure()
        form = next(m for m in Workload(50, seed=5).messages if m.kind == "form")
        record = signed_inbound(form, keys)
        consumed = ConsumerRecord(
            "caf.inbound.v1", 0, 0, 0, 0, record.key, record.value, None, 0, 0, record.headers
        )
        verifier = RecordVerifier(JwksSource(str(keys.publishers_jwks)), DEFAULT_ALLOW)
        loop = asyncio.new_event_loop()
        try:
            record_us = _cpu_us(rounds, lambda: loop.run_until_complete(verifier.verify(consumed)))
        finally:
            loop.close()
        now = dt.datetime.now(dt.UTC)
        token = keys.assertion(tin="123-45-6789", nonce="tpa-1", issued_at=now)
        provider = JwksSource(str(keys.identity_jwks)).keys
        verdict = check_assertion(token, provider, nonce="tpa-1", now=now)
        assert isinstance(verdict, Asserted), verdict
        assertion_us = _cpu_us(
            rounds, lambda: check_assertion(token, provider, nonce="tpa-1", now=now)
        )
        signer = keys.signer_for("submission")
        value = json.dumps(form.body).encode()
        sign_us = _cpu_us(rounds, lambda: signer.sign(value))
    return AuthFigures(rounds, len(record.value or b""), record_us, assertion_us, sign_us)


def table(figures: AuthFigures) -> str:
    return "\n".join(
        [
            "| what | CPU per message (µs) |",
            "|---|---|",
            f"| verify a record's signature (AU-01; {figures.value_bytes}-byte form, Ed25519) "
            f"| {figures.record_us:.0f} |",
            f"| check a decision's identity assertion (AU-02) | {figures.assertion_us:.0f} |",
            f"| sign a record (the portal's side) | {figures.sign_us:.0f} |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.auth_bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    figures = measure(args.rounds)
    print(table(figures))


if __name__ == "__main__":
    main()
