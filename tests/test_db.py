"""The records database: migrations match the schema; the change log is append-only and chained."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from policetrial.records import changelog, db
from policetrial.records.workspace import Workspace, init_workspace

from .conftest import IN_CI

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def test_migrations_create_exactly_the_schema(tmp_path: Path) -> None:
    engine = db.connect(db.sqlite_url(tmp_path / "t.db"))
    db.migrate(engine)
    with engine.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c), db.metadata)
    assert diff == []
    assert db.schema_is_current(engine)


def test_schema_revision_is_the_migrations_head(tmp_path: Path) -> None:
    """`schema_is_current` compares the recorded revision with `SCHEMA_REVISION` instead of
    asking Alembic; the constant must be Alembic's head, and a database one migration
    behind, or without any, is not current."""
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
    assert ScriptDirectory.from_config(config).get_heads() == [db.SCHEMA_REVISION]
    engine = db.connect(db.sqlite_url(tmp_path / "t.db"))
    assert not db.schema_is_current(engine)
    previous = ScriptDirectory.from_config(config).get_revision(db.SCHEMA_REVISION).down_revision
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, str(previous))
    assert not db.schema_is_current(engine)
    db.migrate(engine)
    assert db.schema_is_current(engine)


def test_change_log_is_append_only_and_chained(imported_copy: Workspace) -> None:
    with imported_copy.engine.connect() as c:
        assert changelog.verify_change_log(c) == []
        count = c.execute(text("SELECT COUNT(*) FROM change_log")).scalar_one()
    assert count >= 12  # init, randomise, eleven imports
    with imported_copy.engine.begin() as c, pytest.raises(Exception, match="append-only"):
        c.execute(text("DELETE FROM change_log"))
    with imported_copy.engine.begin() as c:
        c.execute(text("DROP TRIGGER change_log_no_update"))
        c.execute(text("UPDATE change_log SET actor = 'someone else' WHERE id = 2"))
    with imported_copy.engine.connect() as c:
        assert changelog.verify_change_log(c) == [2]


def _postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=3
        ):
            return True
    except Exception:
        return False


@pytest.fixture()
def postgres_url() -> str:
    if not _postgres_available():
        if IN_CI:
            pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432, and CI=true requires it")
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")

    schema = f"pt_test_{os.getpid()}"
    yield fresh_schema(schema)
    drop_schema(schema)


def fresh_schema(name: str) -> str:
    """A new, empty PostgreSQL schema `name` (dropped first if left over); its URL."""
    import psycopg

    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
    ) as c:
        c.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        c.execute(f"CREATE SCHEMA {name}")
    return f"{PG_URL}?options=-csearch_path%3D{name}"


def drop_schema(name: str) -> None:
    import psycopg

    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
    ) as c:
        c.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.mark.postgres
def test_workspace_on_postgresql(tmp_path: Path, postgres_url: str, force, pseudonymiser) -> None:  # type: ignore[no-untyped-def]
    from policetrial.ingest.importer import import_extract
    from policetrial.randomise.sealed import randomise_workspace

    ws = init_workspace(tmp_path / "ws", database_url=postgres_url)
    assert not (tmp_path / "ws" / "trial.db").exists()
    for kind in ("stations", "beats", "officers"):
        import_extract(ws, kind, force.files[kind], pseudonymiser=pseudonymiser)
    again = import_extract(ws, "officers", force.files["officers"], pseudonymiser=pseudonymiser)
    assert not again.changed
    sealed = randomise_workspace(ws)
    assert sealed.verify()
    with ws.engine.connect() as c:
        assert changelog.verify_change_log(c) == []
        diff = compare_metadata(MigrationContext.configure(c), db.metadata)
    assert diff == []
    with ws.engine.begin() as c, pytest.raises(Exception, match="append-only"):
        c.execute(text("UPDATE allocations SET seed = 1"))
    ws.engine.dispose()


@pytest.mark.postgres
def test_concurrent_appends_keep_the_chain_on_postgresql(postgres_url: str) -> None:
    """Eight threads appending at once: every entry chains to a different predecessor, so
    the log verifies (without the lock two appends could share a predecessor)."""
    from concurrent.futures import ThreadPoolExecutor

    engine = db.connect(postgres_url)
    db.migrate(engine)

    def append(i: int) -> None:
        with engine.begin() as c:
            changelog.append_change(c, action="test", entity="thread", entity_id=str(i))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(append, range(80)))
    with engine.connect() as c:
        assert changelog.verify_change_log(c) == []
        assert (
            c.execute(text("SELECT COUNT(DISTINCT prev_hash) FROM change_log")).scalar_one() == 80
        )
    engine.dispose()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_ratings_stored_before_0008_keep_their_order_and_stay_append_only(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """Migration 0008 gives every stored rating an id in the order it was stored and
    attempt 1, keeps one rating per rater and incident and the append-only triggers, and
    goes back to 0007 while no verdict has been withdrawn."""
    import datetime as dt

    from alembic import command
    from alembic.config import Config
    from sqlalchemy.exc import IntegrityError

    url = (
        db.sqlite_url(tmp_path / "t.db")
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    engine = db.connect(url)
    config = Config()
    config.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))

    def to(revision: str, *, down: bool = False) -> None:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)

    rating = text(
        "INSERT INTO audit_ratings (sample_id, audit_id, rater, verdict, imported_at, actor, "
        "source, source_sha256, synthetic) VALUES (1, :audit, :rater, 'yes', :at, 't', "
        "'ratings.csv', 'x', FALSE)"
    )
    at = dt.datetime(2026, 12, 1, 9, 30)
    to("0007")
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO audit_samples (created_at, actor, algorithm, seed, fraction, "
                "untagged_fraction, double_rated_fraction, allocation_digest, strata, n_items, "
                "digest) VALUES (:at, 't', 'a', 1, '1/10', '0', '0', 'd', '[]', 2, 'd')"
            ),
            {"at": at},
        )
        for audit_id, rater in (("A0002", "R1"), ("A0001", "R1"), ("A0001", "R2")):
            c.execute(rating, {"audit": audit_id, "rater": rater, "at": at})
    db.migrate(engine)
    order = text("SELECT id, audit_id, rater, attempt FROM audit_ratings ORDER BY id")
    with engine.connect() as c:
        rows = [tuple(r) for r in c.execute(order)]
        assert compare_metadata(MigrationContext.configure(c), db.metadata) == []
    assert rows == [(1, "A0002", "R1", 1), (2, "A0001", "R1", 1), (3, "A0001", "R2", 1)]
    with engine.begin() as c, pytest.raises(Exception, match="append-only"):
        c.execute(text("UPDATE audit_ratings SET verdict = 'no'"))
    with engine.begin() as c, pytest.raises(Exception, match="append-only"):
        c.execute(text("DELETE FROM audit_ratings"))
    with engine.begin() as c, pytest.raises(IntegrityError):
        c.execute(rating, {"audit": "A0001", "rater": "R1", "at": at})
    with engine.begin() as c:
        c.execute(rating, {"audit": "A0003", "rater": "R1", "at": at})
        # after the stored ones (PostgreSQL's sequence skips the id the refused row took)
        assert c.execute(text("SELECT MAX(id) FROM audit_ratings")).scalar_one() > 3
    to("0007", down=True)
    with engine.connect() as c:
        kept = c.execute(text("SELECT COUNT(*) FROM audit_ratings")).scalar_one()
    assert kept == 4
    db.migrate(engine)
    assert db.schema_is_current(engine)
    engine.dispose()
