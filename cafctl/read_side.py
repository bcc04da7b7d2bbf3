"""The operator's use of the authorization API (`services/caf_query`): its readiness for
`cafctl status`, and for `cafctl trace --why …` what it answers now of the grants traced.

The API is at `CAFCTL_API_URL` (default the local stack's `http://127.0.0.1:8090`). Reading a
taxpayer's records takes an employee token: `CAFCTL_API_TOKEN` (from the identity provider), or on
the local stack one minted by its development provider for the operator. The API audits each read
under the token's subject with the reason given; cafctl adds nothing to that trail itself.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from schemas import topics

LOCAL_API = "http://127.0.0.1:8090"
TOPIC = "read side (API, now)"  # how trace shows the API's answers


@dataclass(frozen=True)
class ReadSideApi:
    """Where the API is."""

    base_url: str

    @classmethod
    def from_environment(cls) -> ReadSideApi:
        return cls(os.environ.get("CAFCTL_API_URL", LOCAL_API).rstrip("/"))


class ApiRefusedError(RuntimeError):
    """The API refused or failed a read (its status code and detail, nothing of the taxpayer)."""


@dataclass(frozen=True)
class ReadSideRead:
    """An audited employee read of the API: who (the token's subject) and why."""

    api: ReadSideApi
    token: Callable[[], str]
    why: str

    def views(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The API's view now of each grant the traced events name."""
        wanted: dict[str, set[str]] = {}
        for entry in entries:
            record = entry["record"]
            if entry["topic"] == topics.EVENTS and record.get("grant_id"):
                wanted.setdefault(str(record["taxpayer_ref"]), set()).add(str(record["grant_id"]))
        found = []
        now_ms = int(time.time() * 1000)
        for ref, grants in sorted(wanted.items()):
            page = self._post(
                "/v1/employee/taxpayer-authorizations", {"taxpayer_ref": ref, "reason": self.why}
            )
            for grant in page["grants"]:
                if grant["grant_id"] in grants:
                    found.append({"at_ms": now_ms, "topic": TOPIC, "record": grant})
        return found

    def signatures(self, grant_id: str) -> dict[str, Any]:
        """ES-05: the grant's signature evidence, each object hashed again by the API."""
        return self._post(
            "/v1/employee/grant-signatures", {"grant_id": grant_id, "reason": self.why}
        )

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 - the operator's configured API
            f"{self.api.base_url}{path}",
            data=json.dumps(body).encode(),
            headers={
                "authorization": f"Bearer {self.token()}",
                "content-type": "application/json",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                answer: dict[str, Any] = json.loads(response.read())
                return answer
        except urllib.error.HTTPError as error:
            detail = error.read()[:200].decode(errors="replace")
            msg = f"the API answered {error.code}: {detail}"
            raise ApiRefusedError(msg) from None
        except (urllib.error.URLError, OSError) as error:
            msg = f"the API at {self.api.base_url} is unreachable: {error}"
            raise ApiRefusedError(msg) from None
