"""Outcomes per station and period, from the stored extracts, by the protocol's definitions.

Takes a workspace (its extracts, allocation, training sessions and protocol); gives the
station x period table the analysis reads and the incident-level table behind it.

- `windows`: the baseline window and each station's follow-up window;
- `covariates`: station covariates for randomisation (baseline counts among them);
- `compiler`: the protocol's declared outcomes compiled to SQL (SQLGlot trees), with the
  person counts' SQL in `persons`, the event counts' in `events` and the node builders
  they share in `sqltree`;
- `compute`: that SQL run by DuckDB over the Parquet store;
- `dialects`: the SQL in another engine's words (SQLGlot, and the rewrites it needs);
- `script`: the SQL as a script a force runs in its own warehouse, inputs and all;
- `warehouse`: that script run by another engine, statement by statement, its results
  made the tables DuckDB gives;
- `postgres`: a workspace's extracts copied into PostgreSQL, and the script run there;
- `spark`: a SparkSession over the extracts as stored (or a force's Spark tables), and the
  script run there (pyspark imported only inside it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from policetrial import lazy_names

if TYPE_CHECKING:
    from policetrial.outcomes.compiler import CompiledOutcomes, compile_outcomes
    from policetrial.outcomes.compute import (
        OutcomeTables,
        compute_outcomes,
        outcome_connection,
        workspace_outcomes,
        workspace_windows,
    )
    from policetrial.outcomes.covariates import station_covariates
    from policetrial.outcomes.dialects import DIALECTS
    from policetrial.outcomes.postgres import load_workspace, postgres_outcomes
    from policetrial.outcomes.script import (
        OutcomeScript,
        emit_sql,
        outcome_script,
        workspace_script,
    )
    from policetrial.outcomes.windows import baseline_windows, follow_up_ends, station_windows

_HOME = {
    "CompiledOutcomes": "compiler",
    "compile_outcomes": "compiler",
    "OutcomeTables": "compute",
    "compute_outcomes": "compute",
    "outcome_connection": "compute",
    "workspace_outcomes": "compute",
    "workspace_windows": "compute",
    "station_covariates": "covariates",
    "DIALECTS": "dialects",
    "load_workspace": "postgres",
    "postgres_outcomes": "postgres",
    "OutcomeScript": "script",
    "emit_sql": "script",
    "outcome_script": "script",
    "workspace_script": "script",
    "baseline_windows": "windows",
    "follow_up_ends": "windows",
    "station_windows": "windows",
}


# Each name from its module on first use: importing one light submodule, such as `windows`
# for the report's flow diagram, does not load DuckDB, SQLGlot and the PostgreSQL driver.
__getattr__ = lazy_names(__name__, _HOME, globals())


__all__ = [
    "DIALECTS",
    "CompiledOutcomes",
    "OutcomeScript",
    "OutcomeTables",
    "baseline_windows",
    "compile_outcomes",
    "compute_outcomes",
    "emit_sql",
    "follow_up_ends",
    "load_workspace",
    "outcome_connection",
    "outcome_script",
    "postgres_outcomes",
    "station_covariates",
    "station_windows",
    "workspace_outcomes",
    "workspace_script",
    "workspace_windows",
]
