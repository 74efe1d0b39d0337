"""End to end: the stack `make run` starts (moto server + `chalice local`), driven over real
HTTP by the call simulator and an HTTP client, as the CPaaS and the dashboard would."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from openapi_spec_validator import validate

from tests.e2e.conftest import ROOT, LocalStack, clean_environment
from tools.callsim import CallSimulator, Geo

pytestmark = pytest.mark.e2e


def login(stack: LocalStack) -> str:
    reply = httpx.post(
        f"{stack.url}/api/v1/auth/login",
        json={"email": stack.info["admin_email"], "password": stack.info["admin_password"]},
    )
    assert reply.status_code == 200, reply.text
    return str(reply.json()["id_token"])


def calls_of_today(stack: LocalStack, token: str) -> dict[str, dict[str, object]]:
    reply = httpx.get(
        f"{stack.url}/api/v1/calls?limit=200", headers={"Authorization": f"Bearer {token}"}
    )
    assert reply.status_code == 200, reply.text
    return {c["call_sid"]: c for c in reply.json()["calls"]}


def test_openapi_document_is_served(stack: LocalStack) -> None:
    reply = httpx.get(f"{stack.url}/openapi.json")
    assert reply.status_code == 200
    validate(reply.json())
    assert "/voice/inbound" in reply.json()["paths"]


def test_a_simulated_call_is_answered_recorded_and_finished(stack: LocalStack) -> None:
    # Given the demo tracking number and the CPaaS credentials the stack announced
    with CallSimulator(stack.url, stack.info["twilio_auth_token"]) as cpaas:
        # When a caller from California dials it
        transcript = cpaas.place_call(
            "+14155550123",
            stack.info["demo_number"],
            caller_geo=Geo("San Francisco", "CA", "94105", "US"),
        )
    # Then they hear the account's greeting, with no application error
    assert not transcript.application_error
    assert any("Demo Networks" in text for text in transcript.said())
    assert transcript.final_status == "completed"
    assert transcript.status_callback is not None
    assert transcript.status_callback.status_code == 200
    # And the call log shows the call, finished, with its duration and caller location
    call = calls_of_today(stack, login(stack))[transcript.call_sid]
    assert call["status"] == "completed"
    assert call["duration_seconds"] == int(transcript.duration or 0)
    assert call["to"] == stack.info["demo_number"]
    # ... what the CPaaS said about the caller, and what the number itself implies
    assert call["tags"]["from_state"] == "CA"
    assert call["tags"]["from_zip"] == "94105"
    assert call["tags"]["caller_area_code"] == "415"
    assert call["tags"]["caller_state"] == "CA"


def test_a_cpaas_with_the_wrong_auth_token_is_refused_and_writes_nothing(stack: LocalStack) -> None:
    with CallSimulator(stack.url, "not-the-token") as impostor:
        transcript = impostor.place_call("+14155550124", stack.info["demo_number"])
    assert transcript.application_error
    assert [r.status_code for r in transcript.requests_to("/voice/inbound")] == [403]
    assert transcript.call_sid not in calls_of_today(stack, login(stack))


def test_the_simulator_cli_places_a_call(stack: LocalStack) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.callsim",
            "--url",
            stack.url,
            "--auth-token",
            stack.info["twilio_auth_token"],
            "--from",
            "+14155550125",
            "--to",
            stack.info["demo_number"],
            "--json",
        ],
        cwd=ROOT,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    import json

    transcript = json.loads(result.stdout.strip().splitlines()[-1])
    assert transcript["final_status"] == "completed"
    assert transcript["call_sid"] in calls_of_today(stack, login(stack))


def test_local_data_survives_a_restart(stack: LocalStack) -> None:
    # Given a publisher created and a call placed before the restart
    token = login(stack)
    created = httpx.post(
        f"{stack.url}/api/v1/publishers",
        json={"name": "Survivor Media"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201
    with CallSimulator(stack.url, stack.info["twilio_auth_token"]) as cpaas:
        sid = cpaas.place_call("+14155550126", stack.info["demo_number"]).call_sid
    # When the stack is stopped and started again on the same state folder
    stack.stop()
    stack.start()
    # Then the same logins work and the data is still there
    token = login(stack)
    publishers = httpx.get(
        f"{stack.url}/api/v1/publishers", headers={"Authorization": f"Bearer {token}"}
    )
    assert "Survivor Media" in {p["name"] for p in publishers.json()["publishers"]}
    assert calls_of_today(stack, token)[sid]["status"] == "completed"
