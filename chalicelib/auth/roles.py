"""Roles and the authenticated principal of a management request."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Role(IntEnum):
    """Ordered: each role can do everything the roles below it can."""

    AGENT = 1
    ADMIN = 2
    SUPER_ADMIN = 3

    @property
    def wire(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls[value.strip().upper()]
        except KeyError as err:
            raise ValueError(f"unknown role {value!r}") from err


@dataclass(frozen=True)
class Principal:
    """A logged-in user, as proven by a verified token."""

    user_id: str
    account_id: str
    role: Role
    email: str | None

    def may(self, minimum: Role) -> bool:
        return self.role >= minimum
