"""Import of a force's extracts: read, map headers, validate, pseudonymise, store.

Takes a CSV or Excel file of one extract kind (`policetrial.protocol.extracts`) and a
pseudonymiser; gives an `ImportReport` (rows read, stored, rejected and why) and, unless
the file as a whole is wrong, the rows in the workspace's store, all or nothing.

- `read`: the file's bytes to text cells (encodings, delimiters, Excel), rows numbered,
  blank rows set aside, a repeated header refused;
- `validate`: each row checked against its kind's columns and the protocol's codes;
- `codes`: codes in the protocol's spelling, the protocol's code map, the nearest codes;
- `freetext`: values that look like personal data or narrative;
- `timestamps`: what is wrong with a date or time that does not read;
- `importer`: `import_extract` and `import_directory`, the one way in.
"""

from policetrial.ingest.importer import ImportReport, import_directory, import_extract
from policetrial.ingest.read import read_extract

__all__ = ["ImportReport", "import_directory", "import_extract", "read_extract"]
