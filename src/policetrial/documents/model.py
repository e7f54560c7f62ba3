"""A trial document as data: titled sections of entries, each filled from the protocol or
marked "to write" with the checklist item it answers. Rendered by `render`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["TO_WRITE", "Document", "Entry", "Section"]

TO_WRITE = "to write"


@dataclass(frozen=True)
class Entry:
    """One item: its number and name (e.g. SPIRIT "16 Outcomes") and its text, or None
    when the trial team must write it."""

    item: str
    name: str
    text: str | None
    guidance: str = ""
    """What the item asks for (shown beside an item still to write)."""

    @property
    def status(self) -> str:
        return "filled" if self.text else TO_WRITE

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "name": self.name,
            "status": self.status,
            "text": self.text,
            "guidance": self.guidance,
        }


@dataclass(frozen=True)
class Section:
    heading: str
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class Document:
    """A protocol, plan or checklist: title, source line and sections."""

    kind: str
    title: str
    source: str
    """Where it came from and which guideline it follows (cited in the document)."""
    sections: tuple[Section, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def entries(self) -> tuple[Entry, ...]:
        return tuple(e for s in self.sections for e in s.entries)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title": self.title,
            "source": self.source,
            "notes": list(self.notes),
            "sections": [
                {"heading": s.heading, "entries": [e.to_dict() for e in s.entries]}
                for s in self.sections
            ],
            "filled": sum(1 for e in self.entries if e.text),
            "to_write": sum(1 for e in self.entries if not e.text),
        }
