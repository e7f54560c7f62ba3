"""Web accounts, sessions and failed-login limits, kept in the trial's records database.

Roles: `admin` (accounts), `manager` (the trial manager: progress without arms),
`statistician` (the only role that sees the allocation and results by arm) and `auditor`
(blinded; rates incidents under a neutral rater code such as `A03`). Officers have no
account: a one-time questionnaire link is their only way in.

Failed logins are counted by `throttle`. Passwords are hashed with argon2id (argon2-cffi's
defaults, RFC 9106's second recommended option). A session is a random 256-bit id: the
browser holds it in a signed cookie, the database holds only its SHA-256 with an expiry,
so logging out or disabling an account ends the session at once. Every change to an
account goes to the change log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from policetrial.errors import AccountError
from policetrial.records import changelog, db
from policetrial.web import passwords

__all__ = [
    "ROLES",
    "User",
    "add_user",
    "authenticate",
    "disable_user",
    "enable_user",
    "end_session",
    "find_user",
    "hash_password",
    "list_users",
    "open_session",
    "session_user",
    "verify_password",
]

ROLES = ("admin", "manager", "statistician", "auditor")
ROLE_TITLES = {
    "admin": "administrator",
    "manager": "trial manager",
    "statistician": "statistician",
    "auditor": "auditor",
}
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
MIN_PASSWORD = passwords.MIN_PASSWORD
_hasher = PasswordHasher()
# A hash to verify against when the username is unknown, so that the time a failed login
# takes does not tell whether the account exists.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    rater_code: str | None
    active: bool

    @property
    def title(self) -> str:
        return ROLE_TITLES[self.role]

    def to_dict(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "role": self.role,
            "rater_code": self.rater_code,
            "active": self.active,
        }


def _user(row: Any) -> User:
    return User(
        int(row["id"]), row["username"], row["role"], row["rater_code"], bool(row["active"])
    )


def normalise_username(text: str) -> str:
    """A typed username as stored: trimmed, lower case, printable characters, at most 64.

    Anything typed into the login form goes through this before it reaches the database
    (PostgreSQL refuses NUL bytes in text, say)."""
    return "".join(ch for ch in text.strip().lower() if ch.isprintable())[:64]


def check_password(password: str, *, username: str = "", words: tuple[str, ...] = ()) -> None:
    """Refuse a weak password (the policy is `passwords.check_password`'s)."""
    passwords.check_password(password, username=username, words=words)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def add_user(
    engine: Engine,
    username: str,
    role: str,
    password: str,
    *,
    actor: str | None = None,
    words: tuple[str, ...] = (),
) -> User:
    """Create an account; auditors get the next neutral rater code (A01, A02, ...).

    Rater codes are allocated safely when accounts are added at the same time: the code
    is unique in the database, and a transaction that lost the race for one tries the
    next free code instead of failing. `words` are the trial's own words, which the
    password must not be made of (`passwords.trial_words`).
    """
    username = username.strip().lower()
    if not _USERNAME.match(username):
        raise AccountError(
            f"username {username!r}: use 3-64 lower-case letters, digits, '.', '_' or '-'"
        )
    if not role:
        raise AccountError(f"choose a role: {', '.join(ROLES)}")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    check_password(password, username=username, words=words)
    who = actor or changelog.current_actor()
    password_hash = _hasher.hash(password)
    for _ in range(50):
        try:
            return _insert_user(engine, username, role, password_hash, who)
        except (IntegrityError, OperationalError):
            if _exists(engine, username):
                raise AccountError(f"there is already an account called {username!r}") from None
            # Another account took the same rater code at the same moment (or SQLite's
            # writer was busy): try again with a fresh look at the codes.
            time.sleep(random.uniform(0.005, 0.05))
    raise AccountError("could not allocate a rater code; try again")


def _exists(engine: Engine, username: str) -> bool:
    t = db.web_users
    with engine.connect() as connection:
        found = connection.execute(select(t.c.id).where(t.c.username == username)).first()
    return found is not None


def _next_rater_code(connection: Any) -> str:
    codes = connection.execute(
        select(db.web_users.c.rater_code).where(db.web_users.c.rater_code.is_not(None))
    ).scalars()
    numbers = [int(c[1:]) for c in codes if re.fullmatch(r"A\d+", c)]
    return f"A{max(numbers, default=0) + 1:02d}"


def _insert_user(engine: Engine, username: str, role: str, password_hash: str, who: str) -> User:
    t = db.web_users
    with engine.begin() as connection:
        rater_code = _next_rater_code(connection) if role == "auditor" else None
        user_id = connection.execute(
            insert(t)
            .values(
                username=username,
                role=role,
                password_hash=password_hash,
                rater_code=rater_code,
                active=True,
                created_at=_now(),
                created_by=who,
            )
            .returning(t.c.id)
        ).scalar_one()
        changelog.append_change(
            connection,
            action="user-add",
            entity="web_user",
            entity_id=username,
            after={"username": username, "role": role, "rater_code": rater_code},
            actor=who,
        )
    return User(int(user_id), username, role, rater_code, True)


def disable_user(engine: Engine, username: str, *, actor: str | None = None) -> User:
    """Disable an account and end its sessions; the account and its history stay."""
    who = actor or changelog.current_actor()
    t = db.web_users
    with engine.begin() as connection:
        row = connection.execute(select(t).where(t.c.username == username)).mappings().first()
        if row is None:
            raise AccountError(f"there is no account called {username!r}")
        if not row["active"]:
            return _user(row)
        connection.execute(update(t).where(t.c.id == row["id"]).values(active=False))
        connection.execute(
            update(db.web_sessions)
            .where(
                and_(db.web_sessions.c.user_id == row["id"], db.web_sessions.c.ended_at.is_(None))
            )
            .values(ended_at=_now())
        )
        changelog.append_change(
            connection,
            action="user-disable",
            entity="web_user",
            entity_id=username,
            before={"active": True},
            after={"active": False},
            actor=who,
        )
    return User(int(row["id"]), username, row["role"], row["rater_code"], False)


def enable_user(engine: Engine, username: str, *, actor: str | None = None) -> User:
    """Enable a disabled account again: the same account, role and rater code.

    An auditor re-enabled keeps their rater code, so all their ratings stay under one
    code and the agreement statistics see one rater, not two.
    """
    who = actor or changelog.current_actor()
    t = db.web_users
    with engine.begin() as connection:
        row = connection.execute(select(t).where(t.c.username == username)).mappings().first()
        if row is None:
            raise AccountError(f"there is no account called {username!r}")
        if row["active"]:
            return _user(row)
        connection.execute(update(t).where(t.c.id == row["id"]).values(active=True))
        changelog.append_change(
            connection,
            action="user-enable",
            entity="web_user",
            entity_id=username,
            before={"active": False},
            after={"active": True},
            actor=who,
        )
    return User(int(row["id"]), username, row["role"], row["rater_code"], True)


def find_user(engine: Engine, username: str) -> User | None:
    t = db.web_users
    with engine.connect() as connection:
        row = connection.execute(select(t).where(t.c.username == username)).mappings().first()
    return None if row is None else _user(row)


def list_users(engine: Engine) -> list[User]:
    with engine.connect() as connection:
        rows = connection.execute(select(db.web_users).order_by(db.web_users.c.username))
        return [_user(r) for r in rows.mappings()]


def authenticate(engine: Engine, username: str, password: str) -> User | None:
    """The active user with this password, or None.

    An unknown username is checked against a dummy hash, so a wrong password and an
    unknown username take the same time. Counting failures is `throttle`'s job.
    """
    username = normalise_username(username)
    t = db.web_users
    with engine.connect() as connection:
        row = connection.execute(select(t).where(t.c.username == username)).mappings().first()
    ok = False
    try:
        ok = _hasher.verify(row["password_hash"] if row else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        ok = False
    if ok and row is not None and row["active"]:
        return _user(row)
    return None


def _hash_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def open_session(engine: Engine, user: User, *, lifetime: dt.timedelta) -> str:
    """A new session for `user`; returns the random id to put in the signed cookie."""
    session_id = secrets.token_urlsafe(32)
    now = _now()
    with engine.begin() as connection:
        connection.execute(
            insert(db.web_sessions).values(
                id_hash=_hash_id(session_id),
                user_id=user.id,
                created_at=now,
                expires_at=now + lifetime,
            )
        )
        changelog.append_change(
            connection, action="login", entity="web_user", entity_id=user.username,
            actor=user.username,
        )  # fmt: skip
    return session_id


def session_user(engine: Engine, session_id: str) -> User | None:
    """The active user of a live session, or None (ended, expired or disabled)."""
    s, u = db.web_sessions, db.web_users
    with engine.connect() as connection:
        row = (
            connection.execute(
                select(u)
                .join(s, s.c.user_id == u.c.id)
                .where(
                    and_(
                        s.c.id_hash == _hash_id(session_id),
                        s.c.ended_at.is_(None),
                        s.c.expires_at > _now(),
                        u.c.active.is_(True),
                    )
                )
            )
            .mappings()
            .first()
        )
    return None if row is None else _user(row)


def end_session(engine: Engine, session_id: str, user: User) -> None:
    """Log out: the session ends in the database, whatever the browser keeps."""
    with engine.begin() as connection:
        connection.execute(
            update(db.web_sessions)
            .where(db.web_sessions.c.id_hash == _hash_id(session_id))
            .values(ended_at=_now())
        )
        changelog.append_change(
            connection, action="logout", entity="web_user", entity_id=user.username,
            actor=user.username,
        )  # fmt: skip
