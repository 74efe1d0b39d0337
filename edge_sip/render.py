"""Renders the SIP edge's Kamailio configuration (kamailio.cfg.tmpl) from environment variables.

Usage: python3 render.py --out DIR [--template PATH]

Writes into DIR: kamailio.cfg (the rendered configuration) and address.list (the CPaaS
allow-list for the permissions module). Prints the path of kamailio.cfg. The credentials are
not part of the configuration: the agent (agent.py) loads them from the app at run time.
Refuses missing or invalid values with one line per problem, each naming its variable, and
exit status 2. Standard library only: it runs
in the edge image with Debian's python3.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "kamailio.cfg.tmpl"

# Every variable the renderer reads, with its default (None: required). The Dockerfile and
# entrypoint.sh document exactly these (tests/edge checks it).
VARIABLES: dict[str, str | None] = {
    "SIP_DOMAIN": None,
    "SIP_LISTEN": "udp:0.0.0.0:5060,tcp:0.0.0.0:5060",
    "SIP_ADVERTISE": "",
    "APP_URL": None,
    "EDGE_SHARED_SECRET": None,
    "CPAAS_ALLOW": None,
    "TLS_CERT": "",
    "TLS_KEY": "",
    "MIN_EXPIRES": "60",
    "MAX_EXPIRES": "3600",
    "RPC_PORT": "5090",
    "CREDENTIALS_INTERVAL": "10",
    "PRESENCE_INTERVAL": "60",
}

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
_SECRET = re.compile(r"^[A-Za-z0-9._~+/=-]{16,256}$")
# No `$`: Kamailio would read it as a variable in the http_client URL.
_URL_SAFE = re.compile(r"^[A-Za-z0-9._~:/?#\[\]@!&'()*+,;=%-]+$")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_PLACEHOLDER = re.compile(r"\{\{[A-Z_]+\}\}")
_MAX_EXPIRY = 86400
_MAX_INTERVAL = 3600


class RenderError(ValueError):
    """The environment does not describe a valid edge; one message per bad variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Listener:
    proto: str  # udp | tcp | tls
    host: str  # as Kamailio writes it: IPv4, or [IPv6]
    port: int

    @property
    def socket(self) -> str:
        return f"{self.proto}:{self.host}:{self.port}"

    def line(self, advertise: str) -> str:
        """The `listen=` line; with a public address, the one put in Via and Record-Route."""
        return f"listen={self.socket}" + (
            f" advertise {advertise}:{self.port}" if advertise else ""
        )


@dataclass(frozen=True)
class EdgeSettings:
    sip_domain: str
    listeners: tuple[Listener, ...]
    advertise: str  # "" or the public IPv4, [IPv6] or host name
    app_url: str
    shared_secret: str
    cpaas_allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    tls_cert: str
    tls_key: str
    min_expires: int
    max_expires: int
    rpc_port: int
    credentials_interval: int  # seconds between the agent's credential pulls
    presence_interval: int  # seconds between the agent's registration snapshots

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)


def _value(env: Mapping[str, str], name: str) -> str:
    default = VARIABLES[name]
    raw = env.get(name, "").strip()
    return raw if raw else (default or "")


def _port(name: str, raw: str, problems: list[str]) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        problems.append(f"{name}: {raw!r} is not a port (1-65535)")
        return 0
    return int(raw)


def _seconds(env: Mapping[str, str], name: str, maximum: int, problems: list[str]) -> int:
    """A whole number of seconds, 1..maximum; 0 (with a problem named) otherwise."""
    raw = _value(env, name)
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        problems.append(f"{name}: {raw!r} is not a number of seconds (1-{maximum})")
        return 0
    return int(raw)


def _listeners(raw: str, problems: list[str]) -> tuple[Listener, ...]:
    found: list[Listener] = []
    for item in (part.strip() for part in raw.split(",")):
        proto, _, rest = item.partition(":")
        host, _, port_text = rest.rpartition(":")
        if proto not in ("udp", "tcp", "tls") or not host:
            problems.append(f"SIP_LISTEN: {item!r} is not proto:IP:PORT with proto udp, tcp or tls")
            continue
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            problems.append(f"SIP_LISTEN: {host!r} in {item!r} is not an IP address")
            continue
        port = _port("SIP_LISTEN", port_text, problems)
        if port:
            shown = f"[{address}]" if address.version == 6 else str(address)
            found.append(Listener(proto, shown, port))
    if found and not any(listener.proto in ("udp", "tcp") for listener in found):
        problems.append("SIP_LISTEN: needs at least one udp: or tcp: address")
    return tuple(found)


def _advertise(raw: str, problems: list[str]) -> str:
    if not raw:
        return ""
    try:
        address = ipaddress.ip_address(raw.strip("[]"))
    except ValueError:
        if _DOMAIN.match(raw):
            return raw
        problems.append(f"SIP_ADVERTISE: {raw!r} is not an IP address or host name")
        return ""
    return f"[{address}]" if address.version == 6 else str(address)


def _networks(
    raw: str, problems: list[str]
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for item in (part.strip() for part in raw.split(",")):
        try:
            networks.append(ipaddress.ip_network(item, strict=True))
        except ValueError as exc:
            problems.append(f"CPAAS_ALLOW: {item!r} is not a CIDR ({exc})")
    return tuple(networks)


def settings_from_env(env: Mapping[str, str]) -> EdgeSettings:
    """Validates the environment; raises RenderError naming every bad variable."""
    problems: list[str] = []
    for name, default in VARIABLES.items():
        if default is None and not env.get(name, "").strip():
            problems.append(f"{name}: required and not set")

    domain = _value(env, "SIP_DOMAIN")
    if domain and not _DOMAIN.match(domain):
        problems.append(f"SIP_DOMAIN: {domain!r} is not a host name or IP address")

    listeners = _listeners(_value(env, "SIP_LISTEN"), problems)

    advertise = _advertise(_value(env, "SIP_ADVERTISE"), problems)

    app_url = _value(env, "APP_URL").rstrip("/")
    if app_url:
        parts = urlsplit(app_url)
        if (
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or not _URL_SAFE.match(app_url)
        ):
            problems.append(f"APP_URL: {app_url!r} is not an http(s) URL")
        elif parts.query or parts.fragment:
            problems.append(f"APP_URL: {app_url!r} must not have a query or fragment")
        elif parts.scheme == "http" and parts.netloc.rsplit(":", 1)[0] not in _LOOPBACK_HOSTS:
            # The credentials (HA1s) and the shared secret travel on this connection.
            problems.append(f"APP_URL: {app_url!r} must be https (http only on loopback)")

    secret = _value(env, "EDGE_SHARED_SECRET")
    if secret and not _SECRET.match(secret):
        problems.append(
            "EDGE_SHARED_SECRET: needs 16-256 characters from A-Z a-z 0-9 . _ ~ + / = -"
        )

    allow_raw = _value(env, "CPAAS_ALLOW")
    networks = _networks(allow_raw, problems) if allow_raw else ()

    tls_cert, tls_key = _value(env, "TLS_CERT"), _value(env, "TLS_KEY")
    if bool(tls_cert) != bool(tls_key):
        problems.append("TLS_CERT/TLS_KEY: set both or neither")
    for name, path in (("TLS_CERT", tls_cert), ("TLS_KEY", tls_key)):
        if path and not Path(path).is_file():
            problems.append(f"{name}: {path!r} is not a readable file")
        if path and not re.match(r"^[A-Za-z0-9._/-]+$", path):
            problems.append(f"{name}: {path!r} has characters other than A-Z a-z 0-9 . _ / -")
    has_tls_listener = any(listener.proto == "tls" for listener in listeners)
    if has_tls_listener and not tls_cert:
        problems.append("SIP_LISTEN: a tls: address needs TLS_CERT and TLS_KEY")
    if tls_cert and listeners and not has_tls_listener:
        problems.append("TLS_CERT: set, but SIP_LISTEN has no tls: address")

    min_expires, max_expires = (
        _seconds(env, name, _MAX_EXPIRY, problems) for name in ("MIN_EXPIRES", "MAX_EXPIRES")
    )
    if min_expires and max_expires and min_expires > max_expires:
        problems.append(f"MIN_EXPIRES: {min_expires} is above MAX_EXPIRES {max_expires}")

    rpc_port = _port("RPC_PORT", _value(env, "RPC_PORT"), problems)
    for listener in listeners:
        loopback = listener.host in ("127.0.0.1", "0.0.0.0")  # noqa: S104 - compared, not bound
        if listener.proto in ("tcp", "tls") and listener.port == rpc_port and loopback:
            problems.append(f"RPC_PORT: {rpc_port} is taken by SIP_LISTEN {listener.socket}")

    credentials_interval, presence_interval = (
        _seconds(env, name, _MAX_INTERVAL, problems)
        for name in ("CREDENTIALS_INTERVAL", "PRESENCE_INTERVAL")
    )

    if problems:
        raise RenderError(problems)
    return EdgeSettings(
        sip_domain=domain,
        listeners=listeners,
        advertise=advertise,
        app_url=app_url,
        shared_secret=secret,
        cpaas_allow=networks,
        tls_cert=tls_cert,
        tls_key=tls_key,
        min_expires=min_expires,
        max_expires=max_expires,
        rpc_port=rpc_port,
        credentials_interval=credentials_interval,
        presence_interval=presence_interval,
    )


def address_list(settings: EdgeSettings) -> str:
    """The permissions module's address file: group 1 = the CPaaS's source networks."""
    lines = ["# group  address  mask  port (0: any)  tag -- written by render.py"]
    for network in settings.cpaas_allow:
        lines.append(f"1 {network.network_address} {network.prefixlen} 0 cpaas")
    return "\n".join(lines) + "\n"


def render(settings: EdgeSettings, template: str, out_dir: Path) -> str:
    out = out_dir.resolve()
    defines = "#!define WITH_TLS" if settings.tls else "# TLS off: TLS_CERT/TLS_KEY not set"
    values = {
        "DEFINES": defines,
        "SIP_DOMAIN": settings.sip_domain,
        "LISTEN": "\n".join(listener.line(settings.advertise) for listener in settings.listeners),
        "RPC_PORT": str(settings.rpc_port),
        "APP_URL": settings.app_url,
        "EDGE_SHARED_SECRET": settings.shared_secret,
        "MIN_EXPIRES": str(settings.min_expires),
        "MAX_EXPIRES": str(settings.max_expires),
        "TLS_CERT": settings.tls_cert,
        "TLS_KEY": settings.tls_key,
        "RUN_DIR": str(out),
        "ADDRESS_FILE": str(out / "address.list"),
    }
    text = template
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    leftover = sorted(set(_PLACEHOLDER.findall(text)))
    if leftover:
        raise RenderError([f"template: placeholders without a value: {', '.join(leftover)}"])
    return text


def _write_private(path: Path, text: str) -> None:
    # The config holds the shared secret: owner-only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def write_edge(env: Mapping[str, str], out_dir: Path, template_path: Path = TEMPLATE) -> Path:
    """Validates env, writes the two files into out_dir, returns the kamailio.cfg path."""
    settings = settings_from_env(env)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = render(settings, template_path.read_text(encoding="utf-8"), out_dir)
    _write_private(out_dir / "address.list", address_list(settings))
    _write_private(out_dir / "kamailio.cfg", config)
    return out_dir / "kamailio.cfg"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    args = parser.parse_args(argv)
    try:
        path = write_edge(os.environ, args.out, args.template)
    except RenderError as exc:
        for problem in exc.problems:
            print(f"edge_sip/render: {problem}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
