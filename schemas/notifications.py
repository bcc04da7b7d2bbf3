"""Alerts on `caf.notifications.v1` (docs/contract.md, "Notifications"), keyed by
`recipient_ref`."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime

from schemas.base import OutboundModel, described

__all__ = [
    "Notification",
    "Recipient",
]

Recipient = Literal["taxpayer", "representative", "sre"]


class Notification(OutboundModel):
    """One alert to one recipient about one event; bodies show at most the last 4 TIN digits."""

    notification_id: str = described(
        "Deterministic: one per (event_id, recipient, channel).",
        "c7a1f3e2-0d5b-5e4f-8a9b-1c2d3e4f5a6b",
    )
    event_id: str = described("The event it is about.", "0b6f1d1e-8a53-5f0e-9d56-2f5d0c9a6e11")
    recipient: Recipient = described("Kind of recipient.", "taxpayer")
    recipient_ref: str = described(
        "Who receives it: a taxpayer_ref, a CAF number, or an SRE channel.",
        "9f2c4e1a7b3d5f60a1b2c3d4e5f60718",
    )
    template: str = described("Template name.", "authorization_posted", pattern=r"^[a-z0-9_]+$")
    channel: str = described("Delivery channel.", "online_account")
    created_at: AwareDatetime = described("When it was created.", "2026-11-20T14:05:13+00:00")
    subject: str = described("Subject line.", "A tax professional now has access")
    body: str = described(
        "Plain-language body.",
        "Avery Smith can now act for you (TIN ending 6789) on: Income 1040 2024.",
    )
