"""Post-call webhook jobs: stored before their first attempt, claimed before every delivery.

An account's jobs live in one partition, `ACCT#<a>#PIXELS#queue`, sorted by when each is
due (`<due iso>#<job>`), so the due ones are one Query. Claiming a job moves it, in one
transaction conditioned on the old key still existing, to a later due time (its lease): of
two processes that saw the same due job only one moves it, and a process that dies while
delivering leaves the job to come due again when the lease runs out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.store import keys
from chalicelib.store.models import PixelJobItem
from chalicelib.store.tables import connection

# Long enough for the job's stored copy to outlive every retry (about 16 minutes).
KEEP_FOR = timedelta(days=3)


@dataclass(frozen=True)
class PixelJob:
    """One delivery of one pixel for one call event; `attempts` counts claims made."""

    account_id: str
    job_id: str
    due: datetime
    url: str
    method: str
    secret: str
    payload: dict[str, Any]
    attempts: int
    last_error: str | None = None


@dataclass(frozen=True)
class NewJob:
    url: str
    method: str
    secret: str
    payload: dict[str, Any]


def queue_pk(account_id: str) -> str:
    return keys.counter_pk(account_id, "PIXELS", "queue")


def _sk(due: datetime, job_id: str) -> str:
    # Fixed width (always microseconds, always UTC) so that string order is time order.
    return f"{due.astimezone(UTC).isoformat(timespec='microseconds')}#{job_id}"


def _item(job: PixelJob, now: datetime) -> PixelJobItem:
    return PixelJobItem(
        queue_pk(job.account_id),
        _sk(job.due, job.job_id),
        account_id=job.account_id,
        job_id=job.job_id,
        url=job.url,
        method=job.method,
        secret=job.secret,
        payload=job.payload,
        attempts=job.attempts,
        last_error=job.last_error,
        expires_at=now + KEEP_FOR,
    )


def _job(item: PixelJobItem) -> PixelJob:
    due = datetime.fromisoformat(item.sk.rsplit("#", 1)[0])
    return PixelJob(
        account_id=item.account_id,
        job_id=item.job_id,
        due=due,
        url=item.url,
        method=item.method,
        secret=item.secret,
        payload=dict(item.payload),
        attempts=int(item.attempts),
        last_error=item.last_error,
    )


def enqueue(
    account_id: str, jobs: Sequence[NewJob], due: datetime, attempts: int, now: datetime
) -> list[PixelJob]:
    """Store new jobs (one BatchWriteItem round per 25). `attempts=1` with `due` a lease
    stores them already claimed by the caller, who is about to deliver them."""
    stored = [
        PixelJob(
            account_id=account_id,
            job_id=keys.new_id("pix"),
            due=due,
            url=job.url,
            method=job.method,
            secret=job.secret,
            payload=job.payload,
            attempts=attempts,
        )
        for job in jobs
    ]
    if len(stored) == 1:
        _item(stored[0], now).save()
    elif stored:
        with PixelJobItem.batch_write() as batch:
            for job in stored:
                batch.save(_item(job, now))
    return stored


def due_jobs(account_id: str, now: datetime, limit: int) -> list[PixelJob]:
    """The account's jobs due at `now`, earliest first (consistent read)."""
    bound = f"{now.astimezone(UTC).isoformat(timespec='microseconds')}#~"
    return [
        _job(item)
        for item in PixelJobItem.query(
            queue_pk(account_id), PixelJobItem.sk <= bound, consistent_read=True, limit=limit
        )
    ]


def move(
    job: PixelJob, due: datetime, attempts: int, now: datetime, last_error: str | None = None
) -> PixelJob | None:
    """Move the job to a new due time, if it is still where `job` says it is; None when
    another process moved or removed it first."""
    moved = replace(job, due=due, attempts=attempts, last_error=last_error or job.last_error)
    try:
        with TransactWrite(connection=connection()) as tx:
            tx.delete(_item(job, now), condition=PixelJobItem.pk.exists())
            tx.save(_item(moved, now), condition=PixelJobItem.pk.does_not_exist())
    except TransactWriteError as err:
        codes = {reason.code for reason in err.cancellation_reasons if reason is not None}
        if codes & {"ConditionalCheckFailed", "TransactionConflict"}:
            return None
        raise
    return moved


def claim(job: PixelJob, lease_until: datetime, now: datetime) -> PixelJob | None:
    """Take the job for one delivery attempt; it comes due again at `lease_until` unless
    the claimant settles it first. None: another process has it."""
    return move(job, lease_until, job.attempts + 1, now)


def remove(job: PixelJob) -> None:
    """Delivered or given up. A no-op when the job has moved since (another claim)."""
    PixelJobItem(queue_pk(job.account_id), _sk(job.due, job.job_id)).delete()
