"""CPaaS (Twilio) call simulator: places scripted calls against a running voice app.

This package's names are its public API (what tests and tools import); the modules inside
import one another directly.
"""

from tools.callsim.call.run import APPLICATION_ERROR_TEXT
from tools.callsim.cli import main
from tools.callsim.rest import DEFAULT_ACCOUNT_SID
from tools.callsim.scenario import (
    CallerScript,
    Geo,
    NoInput,
    PartyBehaviour,
    QueueBehaviour,
    RecordingInput,
    ScriptError,
    Speech,
)
from tools.callsim.simulator import CallSimulator
from tools.callsim.transcript import (
    DialLegOutcome,
    DialOutcome,
    Event,
    RequestRecord,
    Transcript,
)
from tools.callsim.twiml import LoopError, TwimlError

__all__ = [
    "APPLICATION_ERROR_TEXT",
    "DEFAULT_ACCOUNT_SID",
    "CallSimulator",
    "CallerScript",
    "DialLegOutcome",
    "DialOutcome",
    "Event",
    "Geo",
    "LoopError",
    "NoInput",
    "PartyBehaviour",
    "QueueBehaviour",
    "RecordingInput",
    "RequestRecord",
    "ScriptError",
    "Speech",
    "Transcript",
    "TwimlError",
    "main",
]
