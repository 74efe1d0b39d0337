"""Applying callbacks that were kept because they could not be applied when they came."""

from __future__ import annotations

from chalice.app import Blueprint, Rate

from chalicelib.observability import logger
from chalicelib.store import deferred
from chalicelib.voice import routes  # noqa: F401 - registers the routes' replay functions
from chalicelib.voice.webhook import REPLAYS

bp = Blueprint(__name__)
BATCHES = 10  # of up to 10 callbacks each per run


def replay_due() -> int:
    """Apply the queued callbacks; each one applied is removed (a callback applied twice
    changes nothing: every step is conditioned on the call's step). One that still cannot
    be applied stays queued and is tried again later. Returns how many were applied."""
    applied = 0
    for _ in range(BATCHES):
        batch = deferred.receive()
        if not batch:
            break
        for received in batch:
            callback = received.callback
            handler = REPLAYS.get(callback.route)
            if handler is None:
                logger.error(
                    "queued callback for an unknown route", extra={"route": callback.route}
                )
                deferred.done(received)
                continue
            try:
                handler(callback.form, **callback.params)
            except Exception:  # noqa: BLE001 - kept for the next run
                # The table is likely still down: stop here rather than spend every kept
                # callback's receives (each counts toward its dead-letter limit).
                logger.exception("queued callback still cannot be applied")
                return applied
            deferred.done(received)
            applied += 1
    return applied


@bp.schedule(Rate(1, unit=Rate.MINUTES))
def replay_deferred(event: object) -> None:
    logger.info("queued callbacks applied", extra={"applied": replay_due()})
