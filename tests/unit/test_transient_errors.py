"""Which failures the guard retries (transient) and which go straight to the dead letters."""

from __future__ import annotations

from botocore.exceptions import ClientError

from caf_runtime.group_writer import UnprocessedItemsError
from caf_runtime.guard import is_transient
from schemas.errors import ContractError


def _aws(code: str, reasons: list[str] | None = None) -> ClientError:
    response: dict[str, object] = {"Error": {"Code": code, "Message": code}}
    if reasons is not None:
        response["CancellationReasons"] = [{"Code": reason} for reason in reasons]
    return ClientError(response, "TransactWriteItems")  # type: ignore[arg-type]


def test_throttling_timeouts_and_a_batch_left_unprocessed_are_retried() -> None:
    assert is_transient(_aws("ProvisionedThroughputExceededException"))
    assert is_transient(_aws("TransactionCanceledException", ["None", "TransactionConflict"]))
    assert is_transient(_aws("TransactionCanceledException", ["ThrottlingError"]))
    assert is_transient(TimeoutError())
    assert is_transient(ConnectionRefusedError())
    assert is_transient(UnprocessedItemsError("2 items of a batch left unprocessed"))


def test_a_failed_condition_a_bad_request_and_a_bug_are_not_retried() -> None:
    assert not is_transient(_aws("TransactionCanceledException", ["ConditionalCheckFailed"]))
    assert not is_transient(_aws("ValidationException"))
    assert not is_transient(ContractError.single("form", "missing", "no form"))
    assert not is_transient(KeyError("grant_id"))
