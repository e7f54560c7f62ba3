"""The independent audit of tags: sample, blinded pack, ratings, agreement, accuracy.

Takes a randomised workspace with its outcomes; gives a sealed, seeded sample of the
counted incidents, the auditor's blinded pack (no arm, period or station), the verdicts
(imported or made on screen), agreement between auditors and the accuracy of the flags by
arm and period.

- `sample`: the stratified sample, drawn by keyed rank and sealed;
- `pack`: the blinded pack, CSV and XLSX, and the audit question;
- `ratings`: verdicts imported all or nothing (and synthetic ones for the demo);
- `queue`: one incident at a time for the web screen;
- `withdrawals`: an auditor's undo of their own last verdict, within minutes, appended
  and hash-chained, never a deletion;
- `agreement/`: kappas, alpha, AC1 with intervals;
- `accuracy`: PPV and sensitivity by arm and period, and the test of an arm difference;
- `workflow`: the steps over a workspace, and the summary the report reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from policetrial import lazy_names

if TYPE_CHECKING:
    from policetrial.audit.accuracy import TaggingAccuracy, tagging_accuracy
    from policetrial.audit.pack import AuditPack
    from policetrial.audit.sample import AuditSample
    from policetrial.audit.workflow import (
        AuditSummary,
        RatingsError,
        audit_summary,
        current_sample,
        draw_audit_sample,
        import_ratings,
        load_ratings,
        run_synthetic_audit,
        simulate_ratings,
        workspace_accuracy,
        workspace_agreement,
        write_audit_pack,
    )

_HOME = {
    "TaggingAccuracy": "accuracy",
    "tagging_accuracy": "accuracy",
    "AuditPack": "pack",
    "AuditSample": "sample",
    "AuditSummary": "workflow",
    "RatingsError": "workflow",
    "audit_summary": "workflow",
    "current_sample": "workflow",
    "draw_audit_sample": "workflow",
    "import_ratings": "workflow",
    "load_ratings": "workflow",
    "run_synthetic_audit": "workflow",
    "simulate_ratings": "workflow",
    "workspace_accuracy": "workflow",
    "workspace_agreement": "workflow",
    "write_audit_pack": "workflow",
}


# Each name from its module on first use: reading a sealed sample or the summary for the
# report does not load the pack's spreadsheet writer nor the on-screen queue.
__getattr__ = lazy_names(__name__, _HOME, globals())


__all__ = [
    "AuditPack",
    "AuditSample",
    "AuditSummary",
    "RatingsError",
    "TaggingAccuracy",
    "audit_summary",
    "current_sample",
    "draw_audit_sample",
    "import_ratings",
    "load_ratings",
    "run_synthetic_audit",
    "simulate_ratings",
    "tagging_accuracy",
    "workspace_accuracy",
    "workspace_agreement",
    "write_audit_pack",
]
