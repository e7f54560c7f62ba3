"""`policetrial document ...`: the protocol (SPIRIT 2025), the statistical analysis plan,
the TIDieR description of the training and the data dictionary, from trial.toml."""

import contextlib
import enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from policetrial.cli import common

__all__ = ["document"]


class Kind(enum.StrEnum):
    protocol = "protocol"
    sap = "sap"
    tidier = "tidier"
    dictionary = "dictionary"


class Format(enum.StrEnum):
    html = "html"
    pdf = "pdf"
    md = "md"
    csv = "csv"


def document(
    kind: Annotated[Kind, typer.Argument(help="protocol, sap, tidier or dictionary.")],
    workspace: common.WorkspaceOption = Path("."),
    protocol: Annotated[
        str | None,
        typer.Option(
            help="A shipped protocol's name or a trial.toml path, instead of a workspace's."
        ),
    ] = None,
    fmt: Annotated[
        Format,
        typer.Option("--format", help="html, pdf or md (the dictionary: csv or html)."),
    ] = Format.html,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Where to write (default out/<kind>.<format> in the workspace)."
        ),
    ] = None,
    as_json: common.JsonOption = False,
) -> None:
    """Write a trial document generated from the protocol (and the workspace's seal,
    questionnaires and training records)."""
    with common.user_errors():
        body, summary = _render(kind, workspace, protocol, fmt)
        target = out or (
            (Path(".") if protocol else workspace / "out") / f"{kind.value}.{fmt.value}"
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_name(target.name + ".tmp")
        staged.write_bytes(body)
        staged.replace(target)
        if as_json:
            common.emit_json({**summary, "path": str(target), "format": fmt.value})
            return
        common.console.print(
            f"Wrote {escape(str(target))}"
            + (
                f": {summary['filled']} items filled, {summary['to_write']} to write."
                if "filled" in summary
                else "."
            )
        )


def _render(kind: Kind, workspace: Path, protocol: str | None, fmt: Format) -> tuple[bytes, Any]:
    from policetrial.documents import protocol_document, render_document, sap_document
    from policetrial.documents.dictionary import dictionary_bytes
    from policetrial.documents.tidier import tidier_document
    from policetrial.errors import WorkspaceError

    allowed = ("csv", "html") if kind is Kind.dictionary else ("html", "pdf", "md")
    if fmt.value not in allowed:
        raise WorkspaceError(
            f"--format {fmt.value} does not fit the {kind.value}; expected one of "
            f"{', '.join(allowed)}"
        )
    context = _context(workspace, protocol, kind)
    if kind is Kind.dictionary:
        rows = dictionary_bytes(context["protocol"], fmt.value)
        return rows, {"kind": "dictionary"}
    if kind is Kind.sap:
        doc = sap_document(
            context["protocol"],
            questionnaire=context.get("questionnaire"),
            sealed=context.get("sealed"),
        )
    elif kind is Kind.tidier:
        doc = tidier_document(
            context["protocol"],
            exposure=context.get("exposure"),
            delivery=context.get("delivery"),
        )
    else:
        doc = protocol_document(context["protocol"])
    summary = doc.to_dict()
    summary.pop("sections")
    return render_document(doc, fmt.value), summary


def _context(workspace: Path, protocol: str | None, kind: Kind) -> dict[str, Any]:
    """The protocol, and from a workspace what it knows besides (seal, questionnaires,
    training)."""
    from policetrial.errors import SurveyError, TrialError, WorkspaceError
    from policetrial.protocol.schema import resolve_protocol
    from policetrial.survey.instruments import load_questionnaire

    if protocol is not None:
        chosen = resolve_protocol(protocol)
        return {"protocol": chosen, "questionnaire": load_questionnaire(chosen.survey.instruments)}
    from policetrial.analysis.seal import sealed_plan
    from policetrial.survey.roster import workspace_questionnaire

    ws = common.open_workspace_from_env(workspace)
    context: dict[str, Any] = {"protocol": ws.protocol}
    with contextlib.suppress(SurveyError, WorkspaceError):
        context["questionnaire"] = workspace_questionnaire(ws)
    sealed = sealed_plan(ws)
    context["sealed"] = None if sealed is None else sealed.to_dict()
    if kind is Kind.tidier:
        from policetrial.records.delivery import workspace_delivery
        from policetrial.records.roster import workspace_exposure

        with contextlib.suppress(TrialError):
            context["exposure"] = workspace_exposure(ws).to_dict()
            context["delivery"] = workspace_delivery(ws).to_dict()
    return context
