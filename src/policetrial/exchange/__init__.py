"""Exchange with the tools trial units already run: REDCap and Sealed Envelope-style lists.

Takes the protocol's questionnaires, the stored responses and the sealed allocation; gives
a REDCap data dictionary, records in REDCap's import format, REDCap's randomisation
allocation table, a Sealed Envelope-style list and a CDISC ODM 1.3.2 snapshot; and
imports questionnaire responses exported from REDCap, all or nothing, each problem named
by file, row and column.

- `redcap`: data dictionary, records export, records import;
- `allocation`: the allocation as REDCap's allocation table and a list;
- `odm`: the allocation and the questionnaires as a CDISC ODM 1.3.2 snapshot (XML).
"""

from policetrial.exchange.allocation import (
    SEALED_ENVELOPE_COLUMNS,
    redcap_allocation,
    sealed_envelope_list,
)
from policetrial.exchange.odm import odm_snapshot
from policetrial.exchange.redcap import (
    DICTIONARY_COLUMNS,
    import_redcap_responses,
    redcap_dictionary,
    redcap_records,
)

__all__ = [
    "DICTIONARY_COLUMNS",
    "SEALED_ENVELOPE_COLUMNS",
    "import_redcap_responses",
    "odm_snapshot",
    "redcap_allocation",
    "redcap_dictionary",
    "redcap_records",
    "sealed_envelope_list",
]
