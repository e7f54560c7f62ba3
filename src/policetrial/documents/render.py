"""A `Document` as HTML (the report's style and Jinja2 machinery), PDF (the report's
offline WeasyPrint) or Markdown."""

from __future__ import annotations

from pathlib import Path

import jinja2

from policetrial.documents.model import TO_WRITE, Document
from policetrial.errors import WorkspaceError

__all__ = ["FORMATS", "render_document", "render_html", "render_markdown", "write_document"]

FORMATS = ("html", "pdf", "md")


def _environment() -> jinja2.Environment:
    # The report's templates come second so that the document reuses its stylesheet.
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [
                jinja2.PackageLoader("policetrial.documents", "templates"),
                jinja2.PackageLoader("policetrial.report", "templates"),
            ]
        ),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(document: Document) -> str:
    return _environment().get_template("document.html.j2").render(d=document, to_write=TO_WRITE)


def render_markdown(document: Document) -> str:
    lines = [f"# {document.title}", "", f"_{document.source}_", ""]
    lines.extend(f"> {note}\n" for note in document.notes)
    for section in document.sections:
        lines.extend([f"## {section.heading}", ""])
        for entry in section.entries:
            head = f"**{entry.item} {entry.name}**".replace("** ", "**", 1)
            if entry.text:
                lines.extend([head, "", entry.text, ""])
            else:
                lines.extend([f"{head}: _{TO_WRITE}_ ({entry.guidance})", ""])
    return "\n".join(lines).rstrip() + "\n"


def render_document(document: Document, fmt: str) -> bytes:
    """The document in `fmt` (html, pdf or md) as bytes."""
    if fmt == "html":
        return render_html(document).encode()
    if fmt == "md":
        return render_markdown(document).encode()
    if fmt == "pdf":
        from policetrial.report.render import render_pdf

        return render_pdf(render_html(document))
    raise WorkspaceError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def write_document(document: Document, path: Path, fmt: str) -> Path:
    """Write the document, staged then moved into place (nothing half-written)."""
    body = render_document(document, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(path.name + ".tmp")
    staged.write_bytes(body)
    staged.replace(path)
    return path
