"""Key helpers: every tenant-owned key starts with the account id."""

from __future__ import annotations

import secrets
from datetime import datetime

META = "META"
ALL_ACCOUNTS = "ACCOUNTS"


def new_id(prefix: str) -> str:
    """A short, url-safe, unguessable id such as `acc_3fZ9...`."""
    return f"{prefix}_{secrets.token_urlsafe(12).replace('-', 'x').replace('_', 'y')}"


def account_pk(account_id: str) -> str:
    return f"ACCT#{account_id}"


def user_sk(user_id: str) -> str:
    return f"USER#{user_id}"


def publisher_sk(publisher_id: str) -> str:
    return f"PUB#{publisher_id}"


def api_key_sk(publisher_id: str, key_id: str = "") -> str:
    """`APIKEY#<publisher>#<key>`; with no key id, the prefix of all the publisher's keys."""
    return f"APIKEY#{publisher_id}#{key_id}"


def api_key_hash_pk(key_hash: str) -> str:
    return f"KEYHASH#{key_hash}"


def number_pk(e164: str) -> str:
    return f"NUM#{e164}"


def tracking_number_sk(e164: str) -> str:
    return f"NUM#{e164}"


def counter_pk(account_id: str, kind: str, owner_id: str) -> str:
    """`ACCT#<a>#TGT#<t>` / `ACCT#<a>#BUY#<b>` / `ACCT#<a>#CAMP#<c>`: an owner's counters."""
    return f"{account_pk(account_id)}#{kind}#{owner_id}"


def caller_seen_sk(e164: str) -> str:
    return f"CALLER#{e164}"


def call_pk(call_sid: str) -> str:
    return f"CALL#{call_sid}"


def calls_by_day_pk(account_id: str, day: str) -> str:
    return f"{account_pk(account_id)}#DAY#{day}"


def day_of(moment: datetime) -> str:
    return moment.strftime("%Y%m%d")


def pool_key_pk(public_key: str) -> str:
    return f"POOLKEY#{public_key}"


def pool_pk(account_id: str, pool_id: str) -> str:
    """`ACCT#<a>#POOL#<p>`: a pool's number leases."""
    return f"{account_pk(account_id)}#POOL#{pool_id}"


def lease_sk(e164: str) -> str:
    return f"LEASE#{e164}"


def dni_session_pk(session_id: str) -> str:
    return f"DNI#{session_id}"


def pool_sessions_pk(account_id: str, pool_id: str) -> str:
    return f"{pool_pk(account_id, pool_id)}#SESSIONS"


def sip_edge_sk(edge_id: str) -> str:
    return f"SIPEDGE#{edge_id}"


def sip_domain_sk(domain: str) -> str:
    return f"SIPDOMAIN#{domain}"


def edge_secret_pk(secret_hash: str) -> str:
    return f"EDGESECRET#{secret_hash}"


def sip_device_sk(edge_id: str = "", extension: str = "") -> str:
    """`SIPDEV#<edge>#<ext>`; without an extension the prefix of the edge's devices, without
    an edge the prefix of all the account's devices."""
    return f"SIPDEV#{edge_id}#{extension}" if edge_id else "SIPDEV#"
