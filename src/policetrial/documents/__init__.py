"""The trial's documents, written from trial.toml and the code's own definitions.

Takes a protocol (and, when there is one, the workspace's seal, questionnaires and training
records); gives the protocol in SPIRIT 2025 order, the statistical analysis plan, the
TIDieR description of the training and the data dictionary, as HTML, PDF or Markdown (CSV
for the dictionary).

- `model`: a document as data: sections of items, filled or "to write";
- `spirit`: the protocol, SPIRIT 2025 item by item;
- `sap`: the statistical analysis plan, from `policetrial.analysis.registry`;
- `tidier`: the TIDieR checklist of the training;
- `dictionary`: every extract column, outcome and result field;
- `render`: HTML (the report's style), PDF (WeasyPrint), Markdown.
"""

from policetrial.documents.model import Document, Entry, Section
from policetrial.documents.render import FORMATS, render_document, write_document
from policetrial.documents.sap import outcome_methods, sap_document
from policetrial.documents.spirit import SPIRIT_2025, protocol_document
from policetrial.documents.tidier import TIDIER_ITEMS, tidier_document

__all__ = [
    "FORMATS",
    "SPIRIT_2025",
    "TIDIER_ITEMS",
    "Document",
    "Entry",
    "Section",
    "outcome_methods",
    "protocol_document",
    "render_document",
    "sap_document",
    "tidier_document",
    "write_document",
]
