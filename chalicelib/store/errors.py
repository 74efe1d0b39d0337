"""Reading DynamoDB's refusals: which failures mean "a condition did not hold"."""

from __future__ import annotations

from pynamodb.exceptions import PynamoDBException, TransactWriteError


def condition_failed(err: PynamoDBException) -> bool:
    """True when a conditional write was refused because its condition did not hold.

    Anything else (throttling, a transaction conflict, a bad request) is a real failure
    that callers must let through.
    """
    if isinstance(err, TransactWriteError):
        reasons = [r for r in err.cancellation_reasons if r is not None]
        return bool(reasons) and all(r.code == "ConditionalCheckFailed" for r in reasons)
    return err.cause_response_code == "ConditionalCheckFailedException"
