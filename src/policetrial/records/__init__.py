"""The trial's records: the workspace folder, its database and its stored extracts.

Takes a workspace folder (and optionally a PostgreSQL URL); gives the `Workspace` every
stage reads and writes through, and the records themselves: stations, officers and their
eligibility, training, the arms in force, the append-only change log, pseudonyms.

- `workspace`: create and open a workspace;
- `db`: the database schema (SQLAlchemy Core), engine and migrations (`migrations/`);
- `changelog`: the hash-chained, append-only log of every change;
- `store`: the extracts as stored (Parquet and tables), written all or nothing, read back;
- `roster`: stations, officers, eligibility, training exposure by station and arm;
- `allocation`: the arm of each station under the allocation in force;
- `pseudonym`: the keyed HMAC that replaces every identifier at import.
"""

from policetrial.records.allocation import current_arms
from policetrial.records.changelog import append_change, verify_change_log
from policetrial.records.pseudonym import Pseudonymiser, load_pseudonymiser, write_key_file
from policetrial.records.roster import (
    Exposure,
    eligible_officers,
    load_officers,
    load_stations,
    workspace_exposure,
)
from policetrial.records.store import read_store
from policetrial.records.workspace import Workspace, init_workspace, open_workspace

__all__ = [
    "Exposure",
    "Pseudonymiser",
    "Workspace",
    "append_change",
    "current_arms",
    "eligible_officers",
    "init_workspace",
    "load_officers",
    "load_pseudonymiser",
    "load_stations",
    "open_workspace",
    "read_store",
    "verify_change_log",
    "workspace_exposure",
    "write_key_file",
]
