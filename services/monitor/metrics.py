"""The monitor's metrics (labels are enumerations only: never a CAF number or a taxpayer)."""

from __future__ import annotations

from prometheus_client import Counter

SUSPECTED = Counter(
    "caf_misuse_suspected_total",
    "CafMisuseSuspected raised, by rule (MN-01 … MN-05)",
    ["rule"],
)
STATEMENTS = Counter("caf_misuse_statements_total", "Annual review statements sent (MN-07)")

for _rule in ("MN-01", "MN-02", "MN-03", "MN-04", "MN-05"):
    SUSPECTED.labels(rule=_rule)  # every series exists from the start, so increase() sees 0 → 1
