"""CallSimulator: the simulated CPaaS as an app's test sees it; it places inbound calls.

It holds what every side of the simulation shares (the account, the signing secret, the
HTTP client, the random source) and hands each call to the call's life (tools.callsim.call).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime
from types import TracebackType

import httpx

from tools.callsim.call.run import CallRun, CallSettings
from tools.callsim.rest import DEFAULT_ACCOUNT_SID
from tools.callsim.scenario import ANSWER, CallerScript, Geo, PartyBehaviour, QueueBehaviour
from tools.callsim.transcript import Transcript
from tools.callsim.webhook import TIMEOUT, Webhooks


class CallSimulator:
    """Places simulated inbound calls against an app over real HTTP, as Twilio would.

    Requests go to `base_url`; signatures are computed over `public_base_url` (what the
    app believes its public address is). With `strict`, invalid TwiML raises TwimlError
    (carrying the finished transcript); otherwise it is only recorded.
    """

    def __init__(
        self,
        base_url: str,
        auth_token: str,
        *,
        public_base_url: str | None = None,
        client: httpx.Client | None = None,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        voice_path: str = "/voice/inbound",
        status_path: str | None = "/voice/status",
        strict: bool = True,
        max_documents: int = 50,
        play_seconds: float = 5.0,
        audio_seconds: Mapping[str, float] | None = None,
        seed: int | None = None,
        start_time: datetime | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.public_base_url = (public_base_url or base_url).rstrip("/")
        self.account_sid = account_sid
        self.voice_path = voice_path
        self.status_path = status_path
        self.strict = strict
        self.max_documents = max_documents
        self.play_seconds = play_seconds
        self.audio_seconds = dict(audio_seconds or {})
        self.start_time = start_time
        self._rng = random.Random(seed)
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=TIMEOUT)
        self._webhooks = Webhooks(
            self._client, auth_token, self.base_url, self.public_base_url, self._rng
        )

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> CallSimulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def place_call(
        self,
        from_: str,
        to: str,
        *,
        script: CallerScript | None = None,
        parties: Mapping[str, PartyBehaviour] | None = None,
        default_party: PartyBehaviour = ANSWER,
        queues: Mapping[str, QueueBehaviour] | None = None,
        extra_params: Mapping[str, str] | None = None,
        caller_geo: Geo | None = None,
        called_geo: Geo | None = None,
    ) -> Transcript:
        """Run one inbound call to completion and return its transcript."""
        run = CallRun(
            settings=self._settings(),
            webhooks=self._webhooks,
            rng=self._rng,
            from_=from_,
            to=to,
            script=script or CallerScript(),
            parties=dict(parties or {}),
            default_party=default_party,
            queues=dict(queues or {}),
            extra_params=dict(extra_params or {}),
            caller_geo=caller_geo or Geo(),
            called_geo=called_geo or Geo(),
        )
        return run.run()

    def _settings(self) -> CallSettings:
        return CallSettings(
            account_sid=self.account_sid,
            voice_path=self.voice_path,
            status_path=self.status_path,
            strict=self.strict,
            max_documents=self.max_documents,
            play_seconds=self.play_seconds,
            audio_seconds=self.audio_seconds,
            start_time=self.start_time,
        )
