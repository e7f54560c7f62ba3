"""The project's exceptions.

Every problem a user can fix (a bad file, a wrong option, a missing step) is a
`TrialError`; the CLI prints its message as one line and exits non-zero. Anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "AccountError",
    "AnalysisError",
    "AuditError",
    "DesignError",
    "ExtractError",
    "ProtocolError",
    "RandomisationError",
    "SurveyError",
    "SynthError",
    "TrialError",
    "WorkspaceError",
]


class TrialError(Exception):
    """A problem with the user's input, files or workspace, explained in one line."""


class ProtocolError(TrialError):
    """The protocol file (trial.toml) is missing, malformed or inconsistent."""


class WorkspaceError(TrialError):
    """The workspace is missing, not initialised, or a stage was run out of order."""


class ExtractError(TrialError):
    """A force extract cannot be imported at all (unreadable, wrong columns, wrong key)."""


class RandomisationError(TrialError):
    """Randomisation cannot be done as asked (bad clusters, impossible constraints)."""


class SynthError(TrialError, ValueError):
    """A synthetic force cannot be made as asked (bad sizes or effect, an unsuited protocol)."""


class AnalysisError(TrialError):
    """The analysis cannot be run on the data as it stands."""


class AuditError(TrialError):
    """The audit cannot be done as asked (no sample yet, a bad ratings file, bad options)."""


class SurveyError(TrialError):
    """An officer questionnaire, its instrument files, invitations or responses are wrong."""


class DesignError(TrialError):
    """A sample-size or power calculation was asked something impossible or malformed."""


class AccountError(TrialError):
    """A web account cannot be added, changed or used as asked."""
