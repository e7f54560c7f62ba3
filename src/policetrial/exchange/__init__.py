"""Exchange with the tools trial units already run: REDCap and Sealed Envelope-style lists.

Takes the protocol's questionnaires, the stored responses and the sealed allocation; gives
a REDCap data dictionary, records in REDCap's import format, REDCap's randomisation
allocation table and a Sealed Envelope-style list; and imports questionnaire responses
exported from REDCap, all or nothing, each problem named by file, row and column.

- `redcap`: data dictionary, records export, records import;
- `allocation`: the allocation as REDCap's allocation table and a list.
"""

from policetrial.exchange.allocation import redcap_allocation, sealed_envelope_list
from policetrial.exchange.redcap import (
    DICTIONARY_COLUMNS,
    import_redcap_responses,
    redcap_dictionary,
    redcap_records,
)

__all__ = [
    "DICTIONARY_COLUMNS",
    "import_redcap_responses",
    "redcap_allocation",
    "redcap_dictionary",
    "redcap_records",
    "sealed_envelope_list",
]
