"""Every read of a taxpayer's records by an employee leaves an audit record (who, when, which
taxpayer_ref, why) in the `ops` table and on `caf.audit.v1`, before the answer is sent: a read
whose record cannot be written fails."""

from __future__ import annotations

from caf_runtime.audit import AuditRecord, audit_item, audit_value
from caf_runtime.dynamo import DynamoTable
from caf_runtime.outputs import Output, Publish
from schemas import topics
from services.caf_query.access import Principal


class EmployeeReads:
    """Audits employee reads through the service's `ops` table and producer."""

    def __init__(self, ops: DynamoTable, publish: Publish) -> None:
        self.ops = ops
        self._publish = publish

    async def __call__(self, who: Principal, action: str, taxpayer_ref: str, why: str) -> None:
        record = AuditRecord(
            action=f"read:{action}",
            target=f"taxpayer_ref:{taxpayer_ref}",
            operator=f"{who.subject}@{who.issuer}",
            why=why,
        )
        await self.ops.client.put_item(
            TableName=self.ops.name,
            Item=audit_item(record),
            ConditionExpression="attribute_not_exists(pk)",
        )
        await self._publish([Output(topics.AUDIT, record.audit_id, audit_value(record))])
