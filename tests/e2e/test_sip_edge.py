"""The SIP edge end to end: Kamailio and its agent on loopback, rendered from the same template
the image uses, reporting to `chalice local` over HTTP; operators' credentials made through the
management API; phones and the CPaaS played by sipp.

Addresses: phones register from 127.0.0.1, the CPaaS sends from 127.0.0.2 (the allow-list),
and 127.0.0.3 is a stranger."""

from __future__ import annotations

import itertools
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import LocalStack, Marketer
from tests.support import caller
from tests.support.edge import DOMAIN, Edge, free_port, sipp, wait_for
from tools.callsim import CallSimulator, PartyBehaviour

pytestmark = pytest.mark.e2e
_extensions = itertools.count(1001)
CPAAS_IP, STRANGER_IP = "127.0.0.2", "127.0.0.3"


def edge_env(stack: LocalStack, secret: str, domain: str = DOMAIN) -> dict[str, str]:
    return {
        "SIP_DOMAIN": domain,
        "SIP_LISTEN": f"udp:127.0.0.1:{free_port()}",
        "APP_URL": stack.url,
        "EDGE_SHARED_SECRET": secret,
        "CPAAS_ALLOW": f"{CPAAS_IP}/32",
        "MIN_EXPIRES": "1",
        "MAX_EXPIRES": "3600",
        "RPC_PORT": str(free_port()),
        "CREDENTIALS_INTERVAL": "1",
        # Presence comes from Kamailio's reports; the tests run snapshots themselves (--once).
        "PRESENCE_INTERVAL": "3600",
    }


@dataclass
class Office:
    """An edge known to the app (its id) and running on loopback."""

    edge_id: str
    edge: Edge
    marketer: Marketer
    folder: Path
    call_token: str  # what the CPaaS sends with each INVITE for this edge
    ports: dict[str, int] = field(default_factory=dict)  # each phone keeps its address

    def phone(self, **body: Any) -> tuple[str, str]:
        """A new SIP credential from the API; (extension, password), loaded by the edge."""
        extension = str(next(_extensions))
        reply = self.marketer.post(
            f"/api/v1/sip-edges/{self.edge_id}/devices", {"extension": extension, **body}
        )
        password = str(reply["device"]["password"])
        assert wait_for(lambda: self.edge.has_credential(extension)), self.edge.log("agent.log")
        return extension, password

    def device(self, extension: str) -> dict[str, Any] | None:
        reply = self.marketer.http.get("/api/v1/sip-devices")
        assert reply.status_code == 200, reply.text
        # (Other tests on the same stack have phones with the same extensions on other edges.)
        found = [
            d
            for d in reply.json()["devices"]
            if d["extension"] == extension and d["edge_id"] == self.edge_id
        ]
        return dict(found[0]) if found else None

    def status(self, extension: str) -> str | None:
        device = self.device(extension)
        return None if device is None else str(device["status"])

    def register(
        self, extension: str, password: str, final: int = 200, **options: Any
    ) -> subprocess.CompletedProcess[str]:
        auth = ("-key", "ext", extension, "-au", extension, "-ap", password)
        port = self.ports.setdefault(extension, free_port())
        result = sipp(
            self.folder, self.edge.port, "register.xml", final, *auth, local_port=port, **options
        )
        assert isinstance(result, subprocess.CompletedProcess)
        return result

    def invite(
        self, extension: str, final: int, local_ip: str = CPAAS_IP, token: str | None = None
    ) -> int:
        result = sipp(
            self.folder, self.edge.port, "invite_expect.xml", final, "-key", "ext", extension,
            local_ip=local_ip, token=self.call_token if token is None else token,
        )  # fmt: skip
        assert isinstance(result, subprocess.CompletedProcess)
        return result.returncode


def start_office(
    stack: LocalStack, marketer: Marketer, folder: Path, domain: str = DOMAIN
) -> Office:
    created = marketer.post("/api/v1/sip-edges", {"name": f"Office {domain}", "domain": domain})
    secret = created["edge"]["secret"]
    # The token routing puts in <Sip> URIs for this edge, as the edge itself reads it.
    token = httpx.get(f"{stack.url}/edge/v1/credentials", headers={"X-Edge-Secret": secret}).json()[
        "call_token"
    ]
    edge = Edge(folder, edge_env(stack, secret, domain))
    try:
        edge.start()
    except BaseException:
        edge.stop()
        raise
    return Office(created["edge"]["id"], edge, marketer, folder, token)


@pytest.fixture(scope="module")
def office(
    stack: LocalStack, marketer: Marketer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Office]:
    running = start_office(stack, marketer, tmp_path_factory.mktemp("office"))
    yield running
    running.edge.stop()


def test_a_phone_registers_and_the_app_shows_it_online_until_it_unregisters(
    office: Office,
) -> None:
    extension, password = office.phone(label="Front desk")
    assert office.status(extension) == "offline"

    # Given the operator's phone with the password the API gave, When it registers
    assert office.register(extension, password).returncode == 0
    # Then the app shows it online, with its user agent, address and expiry
    assert wait_for(lambda: office.status(extension) == "online"), office.edge.log("kamailio.log")
    device = office.device(extension)
    assert device is not None
    assert device["user_agent"] == "sipp-phone/1.0"
    assert device["source"].startswith("udp:127.0.0.1:")
    assert device["sip_uri"] == f"sip:{extension}@{DOMAIN}"
    assert device["last_seen"] is not None
    assert device["contacts"] == 1
    assert "password" not in device

    # When it unregisters (Expires: 0) Then it is offline, last seen kept
    assert office.register(extension, password, expires=0).returncode == 0
    assert wait_for(lambda: office.status(extension) == "offline")
    after = office.device(extension)
    assert after is not None and after["last_seen"] == device["last_seen"]


def test_a_wrong_password_is_refused_and_the_app_sees_nothing(office: Office) -> None:
    extension, _ = office.phone()
    assert office.register(extension, "not-the-password", final=401).returncode == 0
    time.sleep(1.0)
    device = office.device(extension)
    assert device is not None
    assert (device["status"], device["last_seen"]) == ("offline", None)
    assert f'"AoR": "{extension}"' not in json.dumps(office.edge.rpc("ul.dump"))


def test_a_registration_that_runs_out_turns_the_phone_offline(office: Office) -> None:
    extension, password = office.phone()
    assert office.register(extension, password, expires=2).returncode == 0
    assert wait_for(lambda: office.status(extension) == "online")
    # usrloc looks for expired contacts every 5 s and reports them.
    assert wait_for(lambda: office.status(extension) == "offline", timeout=15)


def test_the_cpaas_call_reaches_the_registered_phone_and_completes_through_the_edge(
    office: Office,
) -> None:
    extension, password = office.phone()
    phone_port = free_port()
    # The phone: a sipp UAS on its own port, registered by its extension with that contact.
    phone = sipp(
        office.folder, office.edge.port, "phone_answer.xml", None,
        local_port=phone_port, timeout=30, background=True,
    )  # fmt: skip
    assert isinstance(phone, subprocess.Popen)
    try:
        assert office.register(extension, password, contact_port=phone_port).returncode == 0
        # The CPaaS (allowed source) dials sip:EXT@edge: INVITE, 200, ACK and BYE via the edge.
        call = sipp(office.folder, office.edge.port, "cpaas_call.xml", None,
                    "-key", "ext", extension, local_ip=CPAAS_IP,
                    token=office.call_token)  # fmt: skip
        assert isinstance(call, subprocess.CompletedProcess)
        assert call.returncode == 0, call.stdout + call.stderr
        output, _ = phone.communicate(timeout=30)
        assert phone.returncode == 0, output
    finally:
        if phone.poll() is None:
            phone.kill()
            phone.wait()
    # A stranger gets 403 even for a registered phone, and so does the CPaaS without this
    # edge's call token (another account, or another customer of the CPaaS, dialling it);
    # nobody registered gets 480.
    assert office.invite(extension, 403, local_ip=STRANGER_IP) == 0
    assert office.invite(extension, 403, token="not-this-edges-token") == 0
    assert office.invite("9999", 480) == 0


def test_routing_dials_the_phone_only_while_it_is_registered(
    office: Office, cpaas: CallSimulator
) -> None:
    marketer = office.marketer
    extension, password = office.phone()
    uri = f"sip:{extension}@{DOMAIN}"
    buyer = marketer.buyer()
    desk = marketer.target(buyer, uri, priority=1)
    backup = marketer.target(buyer, "+14155557001", priority=2)
    number = marketer.campaign([desk, backup])
    parties = {
        uri: PartyBehaviour.answer(after=1, talk=30),
        "+14155557001": PartyBehaviour.answer(),
    }

    # The phone is not registered: the call goes to the backup, the log says why.
    first = cpaas.place_call(caller(), number, parties=parties)
    assert not first.application_error
    assert first.dialled() == ["+14155557001"]
    assert marketer.call(first.call_sid)["routing"]["excluded"] == {desk: "phone_offline"}

    # Registered: the call dials <Sip>sip:EXT@edge?X-PPC-Edge-Token=...</Sip> first, with
    # the token the edge checks.
    assert office.register(extension, password).returncode == 0
    assert wait_for(lambda: office.status(extension) == "online")
    second = cpaas.place_call(caller(), number, parties=parties)
    assert second.dialled() == [f"{uri}?X-PPC-Edge-Token={office.call_token}"]
    assert office.edge.rpc("htable.dump", "edge")[0]["slot"][0]["value"] == office.call_token
    assert marketer.call(second.call_sid)["target_id"] == desk
    assert office.register(extension, password, expires=0).returncode == 0


def test_a_revoked_credential_can_no_longer_register_and_its_phone_stops_ringing(
    office: Office,
) -> None:
    extension, password = office.phone()
    assert office.register(extension, password).returncode == 0
    assert wait_for(lambda: office.status(extension) == "online")

    reply = office.marketer.http.delete(f"/api/v1/sip-edges/{office.edge_id}/devices/{extension}")
    assert reply.status_code == 204, reply.text
    assert wait_for(lambda: not office.edge.has_credential(extension))
    assert wait_for(lambda: f'"AoR": "{extension}"' not in json.dumps(office.edge.rpc("ul.dump")))
    assert office.device(extension) is None
    # Its registration went with the credential: the CPaaS gets 480, the phone a challenge.
    assert office.invite(extension, 480) == 0
    assert office.register(extension, password, final=401).returncode == 0


def test_a_rotated_password_replaces_the_old_one(office: Office) -> None:
    extension, old = office.phone()
    reply = office.marketer.http.post(
        f"/api/v1/sip-edges/{office.edge_id}/devices/{extension}/password"
    )
    assert reply.status_code == 200, reply.text
    new = reply.json()["device"]["password"]
    assert new != old
    assert wait_for(lambda: office.register(extension, old, final=401).returncode == 0, timeout=5)
    assert office.register(extension, new).returncode == 0
    assert wait_for(lambda: office.status(extension) == "online")
    assert office.register(extension, new, expires=0).returncode == 0


def test_a_snapshot_heals_presence_the_app_got_wrong(office: Office, stack: LocalStack) -> None:
    extension, password = office.phone()
    assert office.register(extension, password).returncode == 0
    assert wait_for(lambda: office.status(extension) == "online")
    # The app is told the phone left (as if the REGISTER's report was lost and an old
    # unregister arrived late); Kamailio still has it.
    secret = office.edge.env["EDGE_SHARED_SECRET"]
    wrong = {"extension": extension, "registered": False, "contact_count": 0, "at": time.time()}
    reply = httpx.post(
        f"{stack.url}/edge/v1/registrations", json=wrong, headers={"X-Edge-Secret": secret}
    )
    assert reply.status_code == 200, reply.text
    assert office.status(extension) == "offline"
    # The agent's snapshot (ul.dump) puts it right.
    ran = office.edge.run_agent_once()
    assert ran.returncode == 0, ran.stderr
    assert office.status(extension) == "online"
    assert office.register(extension, password, expires=0).returncode == 0


def test_the_edge_refuses_reports_without_the_shared_secret(stack: LocalStack) -> None:
    report = {"extension": "1001", "registered": True, "contact_count": 1}
    for headers in ({}, {"X-Edge-Secret": "edg_" + "x" * 43}):
        reply = httpx.post(f"{stack.url}/edge/v1/registrations", json=report, headers=headers)
        assert reply.status_code == 401
        assert httpx.get(f"{stack.url}/edge/v1/credentials", headers=headers).status_code == 401


PHONES = 200
LOAD_SECONDS = 60


@pytest.mark.slow
def test_200_phones_registering_and_re_registering_for_a_minute_match_kamailio(
    stack: LocalStack, marketer: Marketer, tmp_path: Path
) -> None:
    office = start_office(stack, marketer, tmp_path, domain="load.edge.test")
    try:
        users = []
        for index in range(PHONES):
            reply = marketer.post(
                f"/api/v1/sip-edges/{office.edge_id}/devices", {"extension": f"7{index:03d}"}
            )
            users.append((reply["device"]["extension"], reply["device"]["password"]))
        with (tmp_path / "phones.csv").open("w", newline="") as out:
            out.write("SEQUENTIAL\n")
            out.writelines(
                f"{ext};[authentication username={ext} password={password}]\n"
                for ext, password in users
            )
        assert wait_for(lambda: office.edge.has_credential(users[-1][0]), timeout=20)

        # Every phone registers, then re-registers, spread over a minute (two REGISTER
        # transactions each, with the digest challenge in between).
        rate = 2 * PHONES / LOAD_SECONDS
        started, wall_started = time.monotonic(), datetime.now(UTC)
        run = sipp(
            tmp_path, office.edge.port, "register_many.xml", None,
            "-inf", str(tmp_path / "phones.csv"), "-r", f"{rate:.3f}", "-rp", "1000",
            domain="load.edge.test", calls=2 * PHONES, timeout=LOAD_SECONDS + 60,
        )  # fmt: skip
        elapsed = time.monotonic() - started
        assert isinstance(run, subprocess.CompletedProcess)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert elapsed >= LOAD_SECONDS * 0.9

        # Kamailio's own count and the app's agree from the reports alone (none lost) ...
        def edge_online() -> int:
            view = marketer.http.get(f"/api/v1/sip-edges/{office.edge_id}").json()
            return int(view["edge"]["online"])

        assert office.edge.registered_users() == PHONES
        assert wait_for(lambda: edge_online() == PHONES, timeout=10), edge_online()
        # ... including the re-registrations: phone i registers at about i * 0.15 s and again
        # 30 s later; each is last seen past the midpoint between the two once the reports
        # still queued when sipp finished have arrived.
        spacing = LOAD_SECONDS / (2 * PHONES)

        def not_seen_again() -> list[str]:
            view = marketer.http.get(f"/api/v1/sip-edges/{office.edge_id}").json()
            assert len(view["devices"]) == PHONES
            return [
                d["extension"]
                for d in view["devices"]
                if datetime.fromisoformat(d["last_seen"])
                < wall_started
                + timedelta(seconds=LOAD_SECONDS / 4 + (int(d["extension"]) - 7000) * spacing)
            ]

        assert wait_for(lambda: not not_seen_again(), timeout=20), not_seen_again()
        # ... and a snapshot finds nothing to heal.
        ran = office.edge.run_agent_once()
        assert ran.returncode == 0, ran.stderr
        assert edge_online() == PHONES
    finally:
        office.edge.stop()
