"""A trial workspace: a folder holding the protocol, the records database and the data.

```
trial.toml      the protocol
trial.db        records (SQLite) unless a database URL is given
incidents/      control-room data as Parquet, written by import
imports/        reports of rejected rows
out/            results.json, report.html, figures
```
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from policetrial.errors import WorkspaceError
from policetrial.protocol.schema import (
    Protocol,
    builtin_protocol_path,
    builtin_protocols,
    load_protocol,
)
from policetrial.records import changelog, db
from policetrial.records.settings import record_settings
from policetrial.records.store import recover_pending

__all__ = ["Workspace", "init_workspace", "open_workspace"]

PROTOCOL_FILE = "trial.toml"
DATABASE_FILE = "trial.db"
LOCK_FILE = ".import.lock"


@dataclass(frozen=True)
class Workspace:
    root: Path
    protocol: Protocol
    engine: Engine
    database_url: str

    @property
    def incidents_dir(self) -> Path:
        return self.root / "incidents"

    @property
    def out_dir(self) -> Path:
        return self.root / "out"

    @property
    def rejects_dir(self) -> Path:
        return self.root / "imports"

    def parquet(self, kind: str) -> Path:
        return self.incidents_dir / f"{kind}.parquet"

    @contextlib.contextmanager
    def import_lock(self, *, wait: bool = True) -> Iterator[bool]:
        """Hold the workspace's import lock; yields False if `wait` is off and it is taken.

        Imports read, merge and replace Parquet files, so two at once would lose rows, and
        a process tidying up after a crash must not delete another import's staged file.
        """
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / LOCK_FILE).open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def get_meta(self, name: str) -> str | None:
        with self.engine.connect() as connection:
            value = connection.execute(
                select(db.meta.c.value).where(db.meta.c.name == name)
            ).scalar_one_or_none()
        return None if value is None else str(value)


def init_workspace(
    root: str | Path, *, protocol: str = "connect", database_url: str | None = None
) -> Workspace:
    """Create a workspace with a protocol (a built-in name or a path) and an empty database."""
    root = Path(root)
    if (root / PROTOCOL_FILE).exists():
        raise WorkspaceError(f"{root}: already a workspace (it has {PROTOCOL_FILE})")
    source = builtin_protocol_path(protocol) if protocol in builtin_protocols() else Path(protocol)
    load_protocol(source)  # validate before creating anything
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, root / PROTOCOL_FILE)
    (root / "incidents").mkdir(exist_ok=True)
    (root / "out").mkdir(exist_ok=True)
    workspace = open_workspace(root, database_url=database_url)
    with workspace.engine.begin() as connection:
        changelog.append_change(
            connection,
            action="init",
            entity="workspace",
            after={"protocol": str(source.name), "created": dt.date.today().isoformat()},
        )
    return workspace


def open_workspace(
    root: str | Path, *, database_url: str | None = None, record: bool = True
) -> Workspace:
    """Open an existing workspace, bringing its database schema up to date.

    `record`: log the protocol's settings if trial.toml changed since they were last
    logged. The commands do; the web server does not (its workers open the workspace at
    once, and nothing it serves changes the plan), nor does a copy of a workspace's records
    into another database, which brings the source's log with it."""
    root = Path(root).resolve()
    protocol_path = root / PROTOCOL_FILE
    if not protocol_path.exists():
        raise WorkspaceError(
            f"{root}: not a trial workspace (no {PROTOCOL_FILE}); create one with "
            "`policetrial init DIR`"
        )
    protocol = load_protocol(protocol_path)
    url = database_url or db.sqlite_url(root / DATABASE_FILE)
    engine = db.connect(url)
    try:
        if not db.schema_is_current(engine):
            db.migrate(engine)
    except SQLAlchemyError as exc:
        raise WorkspaceError(
            f"cannot open the database {engine.url!r}: {getattr(exc, 'orig', None) or exc}"
        ) from None
    workspace = Workspace(root=root, protocol=protocol, engine=engine, database_url=url)
    recover_pending(workspace)
    # An edit of trial.toml is logged the first time the workspace is opened after it, so
    # that every setting has a dated history (a deviation from a sealed plan shows when).
    if record:
        record_settings(engine, protocol)
    return workspace
