"""The one place that reads the wall clock, so tests and the simulator can reason about time."""

from __future__ import annotations

from datetime import UTC, datetime

# Set only by tests (through their `clock` fixture); production pays one None check per read.
# One module-level value rather than a patch per importing module, so `from chalicelib.clock
# import utcnow` everywhere sees the same time.
_fixed: datetime | None = None


def utcnow() -> datetime:
    if _fixed is not None:
        return _fixed
    return datetime.now(UTC)


def timestamp() -> float:
    """Unix seconds now, as `time.time()` but from this clock."""
    return utcnow().timestamp()


def fix(moment: datetime | None) -> None:
    """Make `utcnow()` answer `moment` until fixed again; None lets the wall clock run."""
    global _fixed
    if moment is not None and moment.utcoffset() is None:
        raise ValueError("the clock is fixed to aware datetimes only (UTC)")
    _fixed = None if moment is None else moment.astimezone(UTC)
