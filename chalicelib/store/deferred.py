"""Callbacks whose facts could not be written (the table unavailable), kept in a queue until
they can be: SQS in AWS, the local stack's own queue endpoint locally."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from chalicelib.config import get_settings
from chalicelib.observability import logger

# A message the replay could not apply is seen again after this long.
RETRY_AFTER_SECONDS = 30
_client: Any = None


@dataclass(frozen=True)
class DeferredCallback:
    """A verified CPaaS callback: its route, the route's path parameters and its form."""

    route: str
    params: dict[str, str]
    form: dict[str, str]

    def to_body(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_body(cls, body: str) -> DeferredCallback:
        raw = json.loads(body)
        return cls(str(raw["route"]), dict(raw["params"]), dict(raw["form"]))


@dataclass(frozen=True)
class Received:
    callback: DeferredCallback
    receipt: str


def _sqs() -> Any:
    """The SQS client, built on first use (most requests never need it)."""
    global _client
    if _client is None:
        import botocore.config
        import botocore.session

        settings = get_settings()
        _client = botocore.session.get_session().create_client(
            "sqs",
            region_name=settings.region,
            endpoint_url=settings.sqs_endpoint,
            # Inside a webhook whose table calls already timed out, the CPaaS is still
            # waiting (15 s in all): one short try.
            config=botocore.config.Config(
                connect_timeout=1,
                read_timeout=2,
                retries={"mode": "standard", "total_max_attempts": 1},
            ),
        )
    return _client


def keep(callback: DeferredCallback) -> bool:
    """Queue `callback`; False (logged) when there is no queue or it cannot be reached."""
    url = get_settings().deferred_queue_url
    if not url:
        logger.error("no queue for callbacks that could not be applied; this one is lost")
        return False
    try:
        _sqs().send_message(QueueUrl=url, MessageBody=callback.to_body())
    except Exception:  # noqa: BLE001 - nothing more can be saved; the caller still hears TwiML
        logger.exception("could not queue a callback that could not be applied")
        return False
    logger.warning("callback kept to be applied later", extra={"route": callback.route})
    return True


def receive(max_messages: int = 10) -> list[Received]:
    """Queued callbacks, each hidden from other readers until it is done or the retry time
    passes (so one that cannot be applied yet is tried again)."""
    url = get_settings().deferred_queue_url
    if not url:
        return []
    reply = _sqs().receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=max_messages,
        VisibilityTimeout=RETRY_AFTER_SECONDS,
        WaitTimeSeconds=0,
    )
    return [
        Received(DeferredCallback.from_body(m["Body"]), m["ReceiptHandle"])
        for m in reply.get("Messages", [])
    ]


def done(received: Received) -> None:
    _sqs().delete_message(
        QueueUrl=get_settings().deferred_queue_url, ReceiptHandle=received.receipt
    )
