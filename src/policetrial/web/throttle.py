"""Login throttling: per account with exponential backoff, and per real client address.

Two counters, each a row of `web_login_throttle` read and written under a row lock in one
transaction, so that parallel guesses are all counted and no more than the allowed number
of them ever reaches a password check:

- **the account** (`account:<username>`, known or not): the first `account_limit`
  failures are free; the failure that reaches the limit, and each one after it, locks the
  account for `backoff`, doubling with each further failure up to `longest_lock`. Tries
  while it is locked are refused without a password check, and counted. A successful
  login clears the account's counter.
- **the address** (`address:<ip>`): at most `address_limit` failures within `window`;
  then that address is refused until the window has passed. The limit is well above the
  account's, so one person mistyping (or an attacker guessing one account's password)
  never locks out colleagues who share an address, and one address cannot keep many
  accounts locked.

The address is the peer's, unless the peer is a trusted proxy (`trusted_proxies`): then
the right-most address of `X-Forwarded-For` that is not itself a trusted proxy. A header
from anyone else is ignored, so it cannot be used to dodge the address limit.

`limits` (the rate-limiting library) was considered: its storages are memory, Redis,
Memcached and MongoDB, none shared by the workers of `policetrial serve` without another
server, and its moving windows do not give a per-account backoff; the trial's database
already is the shared, transactional store.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from policetrial.records import db

__all__ = [
    "LoginAttempt",
    "LoginPolicy",
    "begin_login",
    "client_address",
    "login_failed",
    "login_succeeded",
    "parse_networks",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class LoginPolicy:
    """How many failures an account and an address may have, and how long locks last."""

    account_limit: int = 5
    backoff: dt.timedelta = dt.timedelta(seconds=30)
    longest_lock: dt.timedelta = dt.timedelta(minutes=15)
    address_limit: int = 30
    window: dt.timedelta = dt.timedelta(minutes=15)

    def account_lock(self, failures: int) -> dt.timedelta | None:
        """How long the account is locked after its `failures`-th failure (None: not)."""
        if failures < self.account_limit:
            return None
        doublings = min(failures - self.account_limit, 30)
        return min(self.backoff * 2**doublings, self.longest_lock)


@dataclass(frozen=True)
class LoginAttempt:
    """One try at logging in, counted as a failure until `login_succeeded` says otherwise.

    `allowed` is False when the account or the address is locked; `retry_after` is then
    the seconds until it may try again, and `refused_by` says which ("account" or
    "address").
    """

    username: str
    address: str
    allowed: bool
    retry_after: int = 0
    refused_by: str | None = None


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Trusted proxies as networks (`10.0.0.5`, `10.0.0.0/8`, `::1`)."""
    networks = []
    for value in values:
        text = value.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(
                f"trusted proxy {text!r} is not an IP address or network (say 10.0.0.5 or "
                "10.0.0.0/8)"
            ) from None
    return tuple(networks)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]
) -> str:
    """The real client's address: the peer's, or behind trusted proxies `X-Forwarded-For`'s.

    Walks `X-Forwarded-For` from the right (the entry the nearest proxy added) past every
    trusted proxy; the first address that is not one is the client. A peer that is not a
    trusted proxy is the client, whatever header it sends.
    """
    peer = (peer or "unknown")[:64]

    def is_trusted(text: str) -> bool:
        address = _ip(text)
        return address is not None and any(address in net for net in trusted)

    if not trusted or not is_trusted(peer) or not forwarded_for:
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if _ip(hop) is None:
            return peer  # a malformed header: count the proxy, not a made-up client
        if not is_trusted(hop):
            return str(_ip(hop))
    return str(_ip(hops[0])) if hops else peer


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _lock_row(connection: Connection, key: str, now: dt.datetime) -> dict[str, Any]:
    """The counter row of `key`, created if missing, locked until the transaction ends."""
    t = db.web_login_throttle
    values = {"key": key, "failures": 0, "first_at": now, "last_at": now, "locked_until": None}
    dialect = connection.dialect.name
    # Inserting first makes the row exist to be locked; on SQLite the insert also takes the
    # database's one write lock, which serialises the whole read-modify-write.
    if dialect == "postgresql":
        connection.execute(pg_insert(t).values(**values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        connection.execute(sqlite_insert(t).values(**values).on_conflict_do_nothing())
    else:  # pragma: no cover (only SQLite and PostgreSQL are supported)
        if connection.execute(select(t.c.key).where(t.c.key == key)).first() is None:
            connection.execute(insert(t).values(**values))
    query = select(t).where(t.c.key == key)
    if dialect == "postgresql":
        query = query.with_for_update()
    return dict(connection.execute(query).mappings().one())


def _count(
    connection: Connection,
    key: str,
    now: dt.datetime,
    *,
    forget: Callable[[dict[str, Any]], bool],
    lock_for: Callable[[int, dt.datetime], dt.datetime | None],
) -> tuple[int, dt.datetime | None]:
    """Count one failure for `key`; returns the new count and the lock in force before it.

    `forget(row)` says whether the failures counted so far are old enough to start again.
    """
    row = _lock_row(connection, key, now)
    fresh = row["failures"] == 0 or forget(row)
    failures = 1 if fresh else row["failures"] + 1
    first_at = now if fresh else row["first_at"]
    locked = row["locked_until"] if row["locked_until"] and row["locked_until"] > now else None
    lock = lock_for(failures, first_at)
    new_lock = max(d for d in (locked, lock) if d is not None) if (locked or lock) else None
    connection.execute(
        update(db.web_login_throttle)
        .where(db.web_login_throttle.c.key == key)
        .values(failures=failures, first_at=first_at, last_at=now, locked_until=new_lock)
    )
    return failures, locked


def begin_login(
    engine: Engine,
    username: str,
    address: str,
    policy: LoginPolicy,
    *,
    now: dt.datetime | None = None,
) -> LoginAttempt:
    """Count a try at logging in as `username` from `address`, before checking its password.

    The try counts as a failure from the start (so a burst of parallel guesses cannot
    outrun the count); `login_succeeded` takes it back. Refused (`allowed` False, nothing
    to check) when the address has had `address_limit` failures within the window, or the
    account is locked.
    """
    now = now or _now()
    forget_before = now - max(policy.window, policy.longest_lock)
    with engine.begin() as connection:

        def address_lock(failures: int, first_at: dt.datetime) -> dt.datetime | None:
            return first_at + policy.window if failures >= policy.address_limit else None

        _, locked = _count(
            connection,
            f"address:{address}",
            now,
            # A fixed window from the first failure.
            forget=lambda row: bool(row["first_at"] < now - policy.window),
            lock_for=address_lock,
        )
        if locked is not None:
            _record_failure(connection, username, address, now)
            return LoginAttempt(username, address, False, _seconds(locked - now), "address")

        def account_lock(failures: int, first_at: dt.datetime) -> dt.datetime | None:
            span = policy.account_lock(failures)
            return None if span is None else now + span

        _, locked = _count(
            connection,
            f"account:{username}",
            now,
            # Failures are forgotten once the account has been left alone long enough.
            forget=lambda row: bool(row["last_at"] < forget_before),
            lock_for=account_lock,
        )
        if locked is not None:
            _record_failure(connection, username, address, now)
            return LoginAttempt(username, address, False, _seconds(locked - now), "account")
    return LoginAttempt(username, address, True)


def login_failed(engine: Engine, attempt: LoginAttempt) -> None:
    """The password was wrong: the try stays counted; it is added to the record of failures."""
    with engine.begin() as connection:
        _record_failure(connection, attempt.username, attempt.address, _now())


def login_succeeded(engine: Engine, attempt: LoginAttempt, policy: LoginPolicy) -> None:
    """The password was right: clear the account's counter, take the try off the address's."""
    t = db.web_login_throttle
    with engine.begin() as connection:
        connection.execute(delete(t).where(t.c.key == f"account:{attempt.username}"))
        connection.execute(
            update(t)
            .where((t.c.key == f"address:{attempt.address}") & (t.c.failures > 0))
            .values(
                failures=t.c.failures - 1,
                locked_until=case(
                    (t.c.failures - 1 < policy.address_limit, None), else_=t.c.locked_until
                ),
            )
        )
        # Forget counters nobody has touched for a day, so the table stays small.
        connection.execute(delete(t).where(t.c.last_at < _now() - dt.timedelta(days=1)))


def _record_failure(connection: Connection, username: str, address: str, now: dt.datetime) -> None:
    connection.execute(
        insert(db.web_login_failures).values(
            username=username[:64], client=address[:64], at=now.replace(microsecond=0)
        )
    )


def _seconds(span: dt.timedelta) -> int:
    return max(1, int(span.total_seconds() + 0.999))
