"""The read side's own state (table `query`): one item per grant under its taxpayer and one under
its representative's CAF number, each with the view as of the last event applied.

- `TP#<taxpayer_ref>` / `GRANT#<grant_id>`: the taxpayer's history (and the check's input);
- `CAF#<caf_number>` / `GRANT#<grant_id>`: the practitioner's view (grants not yet numbered have
  none);
- `GRANT#<grant_id>` / `TAXPAYER`: whose grant it is (its `taxpayer_ref`), written with the
  grant's first view, so an employee can find a grant's signature evidence by its id (ES-05);
- `OFFICIAL#<official_id>` / `BUSINESS#<taxpayer_ref>`: a Designated Official of a business,
  active or not, as of the last `DesignatedOfficialActivated` / `Deactivated` (DO-08: whom the
  history API shows a business's grants).

Both are written in one transaction, each on the condition that it holds an earlier event (its
`partition`/`offset`), so redelivery and a rebuild from the earliest offset leave the same items.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import DynamoTable
from services.caf_query.views import GrantView, Position

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.type_defs import TransactWriteItemTypeDef


@dataclass(frozen=True)
class Represented:
    """A business a Designated Official acts for (or did)."""

    taxpayer_ref: str
    tin_last4: str
    active: bool
    since: str


class QueryStore(Protocol):
    """What the read side's projector, API and pages need of its views (`DynamoQueryStore`
    implements it)."""

    async def ping(self) -> bool: ...

    async def owner(self, grant_id: str) -> str | None: ...

    async def grant(self, taxpayer_ref: str, grant_id: str) -> GrantView | None: ...

    async def save(self, view: GrantView, before: GrantView | None) -> bool: ...

    async def save_official(
        self, official_id: str, business: Represented, at: Position
    ) -> bool: ...

    async def businesses_of(self, official_id: str) -> list[Represented]: ...

    async def of_taxpayer(self, taxpayer_ref: str) -> list[GrantView]: ...

    async def of_practitioner(self, caf_number: str) -> list[GrantView]: ...


class DynamoQueryStore:
    """The only place that talks to the query table."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.table = DynamoTable(settings, "query")

    async def ping(self) -> bool:
        return await self.table.ping()

    async def owner(self, grant_id: str) -> str | None:
        """The taxpayer_ref of a grant, by its id."""
        item = await self.table.get(f"GRANT#{grant_id}", "TAXPAYER")
        return str(item["taxpayer_ref"]["S"]) if item else None

    async def grant(self, taxpayer_ref: str, grant_id: str) -> GrantView | None:
        item = await self.table.get(f"TP#{taxpayer_ref}", f"GRANT#{grant_id}")
        return _view(item) if item else None

    async def save(self, view: GrantView, before: GrantView | None) -> bool:
        """Store `view` under its taxpayer and its CAF number (and drop it from an earlier CAF
        number it no longer has); False when a later event is already stored."""
        items = [self._put(f"TP#{view.taxpayer_ref}", view)]
        if view.caf_number:
            items.append(self._put(f"CAF#{view.caf_number}", view))
        if before is None:
            items.append(
                {
                    "Put": {
                        "TableName": self.table.name,
                        "Item": {
                            "pk": {"S": f"GRANT#{view.grant_id}"},
                            "sk": {"S": "TAXPAYER"},
                            "taxpayer_ref": {"S": view.taxpayer_ref},
                        },
                    }
                }
            )
        if before is not None and before.caf_number and before.caf_number != view.caf_number:
            items.append(
                {
                    "Delete": {
                        "TableName": self.table.name,
                        "Key": {
                            "pk": {"S": f"CAF#{before.caf_number}"},
                            "sk": {"S": f"GRANT#{view.grant_id}"},
                        },
                    }
                }
            )
        return await self.table.transact(items) is None

    def _put(self, pk: str, view: GrantView) -> TransactWriteItemTypeDef:
        return {
            "Put": {
                "TableName": self.table.name,
                "Item": {
                    "pk": {"S": pk},
                    "sk": {"S": f"GRANT#{view.grant_id}"},
                    "view": {"S": json.dumps(view.to_document(), sort_keys=True)},
                    "partition": {"N": str(view.position.partition)},
                    "offset": {"N": str(view.position.offset)},
                },
                "ConditionExpression": "attribute_not_exists(pk) OR #partition <> :partition "
                "OR #offset < :offset",
                "ExpressionAttributeNames": {"#partition": "partition", "#offset": "offset"},
                "ExpressionAttributeValues": {
                    ":partition": {"N": str(view.position.partition)},
                    ":offset": {"N": str(view.position.offset)},
                },
            }
        }

    async def save_official(self, official_id: str, business: Represented, at: Position) -> bool:
        """A Designated Official activated or deactivated; False when a later event about
        them is stored already (their events share the business's partition)."""
        failed = await self.table.transact(
            [
                {
                    "Put": {
                        "TableName": self.table.name,
                        "Item": {
                            "pk": {"S": f"OFFICIAL#{official_id}"},
                            "sk": {"S": f"BUSINESS#{business.taxpayer_ref}"},
                            "tin_last4": {"S": business.tin_last4},
                            "active": {"BOOL": business.active},
                            "since": {"S": business.since},
                            "offset": {"N": str(at.offset)},
                        },
                        "ConditionExpression": "attribute_not_exists(pk) OR #offset < :offset",
                        "ExpressionAttributeNames": {"#offset": "offset"},
                        "ExpressionAttributeValues": {":offset": {"N": str(at.offset)}},
                    }
                }
            ]
        )
        return failed is None

    async def businesses_of(self, official_id: str) -> list[Represented]:
        """Every business the person is (or was) a Designated Official of."""
        found: list[Represented] = []
        paginator = self.table.client.get_paginator("query")
        async for page in paginator.paginate(
            TableName=self.table.name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"OFFICIAL#{official_id}"}},
            ConsistentRead=True,
        ):
            found.extend(
                Represented(
                    taxpayer_ref=item["sk"]["S"].removeprefix("BUSINESS#"),
                    tin_last4=item["tin_last4"]["S"],
                    active=item["active"]["BOOL"],
                    since=item["since"]["S"],
                )
                for item in page.get("Items", [])
            )
        return found

    async def of_taxpayer(self, taxpayer_ref: str) -> list[GrantView]:
        """Every grant of the taxpayer, as stored."""
        return await self._partition(f"TP#{taxpayer_ref}")

    async def of_practitioner(self, caf_number: str) -> list[GrantView]:
        """Every grant naming the CAF number, as stored."""
        return await self._partition(f"CAF#{caf_number}")

    async def _partition(self, pk: str) -> list[GrantView]:
        views: list[GrantView] = []
        paginator = self.table.client.get_paginator("query")
        async for page in paginator.paginate(
            TableName=self.table.name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
            ConsistentRead=True,
        ):
            views.extend(_view(item) for item in page.get("Items", []))
        return views


def _view(item: dict[str, Any]) -> GrantView:
    return GrantView.from_document(json.loads(str(item["view"]["S"])))
