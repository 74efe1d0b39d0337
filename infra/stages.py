"""Per-stage names and settings; the stage is chosen with `-c stage=dev|prod`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StageSettings:
    """Everything that differs between stages. No account ids or secrets live here."""

    name: str
    #: Retain data resources on stack deletion and refuse table deletion (production).
    protect_data: bool
    log_retention_days: int
    log_level: str
    #: Webhook/API 5XX responses in five minutes that raise the alarm.
    api_5xx_threshold: int

    @property
    def prefix(self) -> str:
        return f"ppc-{self.name}"

    @property
    def stack_name(self) -> str:
        return self.prefix

    @property
    def app_table_name(self) -> str:
        return f"{self.prefix}-app"

    @property
    def idempotency_table_name(self) -> str:
        return f"{self.prefix}-idempotency"

    @property
    def api_function_name(self) -> str:
        return f"{self.prefix}-api"

    @property
    def sweep_function_name(self) -> str:
        return f"{self.prefix}-sweep"

    @property
    def pixels_function_name(self) -> str:
        return f"{self.prefix}-pixels"

    @property
    def replay_function_name(self) -> str:
        return f"{self.prefix}-replay"

    @property
    def deferred_queue_name(self) -> str:
        return f"{self.prefix}-deferred-callbacks"

    @property
    def parameter_prefix(self) -> str:
        return f"/ppc/{self.name}"

    @property
    def twilio_account_sid_parameter(self) -> str:
        return f"{self.parameter_prefix}/twilio/account-sid"

    @property
    def twilio_auth_token_parameter(self) -> str:
        """SecureString the operator creates (CloudFormation cannot create SecureStrings)."""
        return f"{self.parameter_prefix}/twilio/auth-token"


STAGES: dict[str, StageSettings] = {
    "dev": StageSettings(
        name="dev",
        protect_data=False,
        log_retention_days=14,
        log_level="DEBUG",
        api_5xx_threshold=10,
    ),
    "prod": StageSettings(
        name="prod",
        protect_data=True,
        log_retention_days=90,
        log_level="INFO",
        api_5xx_threshold=5,
    ),
}


def stage_settings(name: str) -> StageSettings:
    try:
        return STAGES[name]
    except KeyError:
        raise ValueError(f"unknown stage {name!r}; expected one of {sorted(STAGES)}") from None
