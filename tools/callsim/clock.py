"""Virtual call clock whose deadlines interrupt whatever is playing or ringing."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field


class Interrupt(Exception):
    """Raised by the clock when time reaches a registered deadline."""


class CallerHangup(Interrupt):
    """The caller hung up (CallerScript.hangup_after reached)."""


class MaxDuration(Interrupt):
    """The call reached the CPaaS maximum call duration and was cut off."""


class Dequeued(Interrupt):
    """An agent dequeued the caller waiting in an <Enqueue> queue."""


@dataclass(order=True)
class _Deadline:
    at: float
    priority: int
    token: int
    interrupt: type[Interrupt] = field(compare=False)


class VirtualClock:
    """Seconds since the call arrived; nothing ever sleeps in real time."""

    def __init__(self) -> None:
        self.now = 0.0
        self._deadlines: list[_Deadline] = []
        self._tokens = itertools.count()

    def add_deadline(self, at: float, interrupt: type[Interrupt], priority: int = 0) -> int:
        """Register `interrupt` at `at`; lower priority wins ties. Returns a removal token."""
        token = next(self._tokens)
        self._deadlines.append(_Deadline(at, priority, token, interrupt))
        return token

    def remove_deadline(self, token: int) -> None:
        self._deadlines = [d for d in self._deadlines if d.token != token]

    def clear(self) -> None:
        self._deadlines.clear()

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass, stopping at (and raising) the first deadline reached."""
        target = self.now + max(0.0, seconds)
        due = [d for d in self._deadlines if d.at <= target]
        if due:
            first = min(due)
            self.now = max(self.now, first.at)
            raise first.interrupt()
        self.now = target

    def advance_to(self, at: float) -> None:
        self.advance(at - self.now)


def whole_seconds(seconds: float) -> int:
    """A duration as the CPaaS reports it: in whole seconds, rounded up."""
    # Round first so float noise (2.0000000001) does not add a second.
    return max(0, math.ceil(round(seconds, 3)))
