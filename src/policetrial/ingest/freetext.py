"""Values that look like personal free text: refused in code, key and label columns.

Extracts carry codes, references and labels; a force's export sometimes puts something
else there (a closing code typed as "Caller Jane Smith tel 07700 900123 lives at 4 High
Street, YO1 7HH"). Such a value must never be stored, echoed in a rejects file or shown
to an auditor. `looks_personal` says why a value looks like personal data, or None:

- an e-mail address;
- a UK telephone number (10 or 11 digits starting 0, or +44), spaces and dashes allowed;
- a UK postcode (`YO1 7HH`, `SW1A 1AA`);
- a street address (a house number before a word such as Street, Road or Close);
- a name: a title (Mr, Mrs, Ms, Miss, Dr) before a capitalised word, or a common forename
  before a capitalised word (in columns that are not place names);
- narrative: more than `NARRATIVE_WORDS` words.

What it cannot catch, it says so in docs/import.md: a surname on its own, or an uncommon
forename with no title, in a column whose codes are themselves capitalised words.
"""

from __future__ import annotations

import re

import pandas as pd

__all__ = ["FORENAMES", "NARRATIVE_WORDS", "looks_personal", "personal_reasons"]

NARRATIVE_WORDS = 12

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![\d])(?:\+\s?44\s?\(?0?\)?\s?|0)\d(?:[\s-]?\d){8,9}(?![\d])")
_POSTCODE = re.compile(r"\b[A-Za-z]{1,2}\d[A-Za-z\d]?\s*\d[A-Za-z]{2}\b")
_STREET = re.compile(
    r"\b\d{1,4}[A-Za-z]?,?\s+(?:[A-Z][a-z]+\s+){1,3}"
    r"(?:Street|St|Road|Rd|Lane|Ln|Avenue|Ave|Close|Drive|Dr|Way|Court|Ct|Place|Pl|"
    r"Crescent|Terrace|Gardens|Grove|Hill|Park|Square|Walk|Row|Mews|View)\b"
)
_TITLE = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Sir|Dame)\.?\s+[A-Z][a-z'-]+")
_CAPITALISED_PAIR = re.compile(r"\b([A-Z][a-z]+)\s+([A-Z][a-z'-]+)")

# Common forenames in England and Wales (the ONS's most frequent first names of births and
# of the adult population), written for this check: a capitalised word after one of these
# is taken for a surname.
_FORENAME_LIST = """
    aaron abdul abigail adam adrian ahmed aidan alan albert alex alexander alfie alice
    alison amanda amber amelia amy andrea andrew angela ann anna anne anthony archie arthur
    ashley barbara barry ben benjamin beth bethany bill brenda brian callum cameron carl
    carol caroline catherine charles charlie charlotte chloe chris christine christopher
    claire colin connor craig daniel danielle darren david dawn dean debbie deborah denise
    dennis derek diane donna dorothy douglas dylan edward eileen elizabeth ella ellie emily
    emma eric ethan evie frank freddie freya gary gavin gemma geoffrey george georgia
    gillian gordon grace graham hannah harriet harry harvey hayley heather helen henry holly
    ian isaac isabel isabella isla jack jacob jacqueline jade jake james jamie jane janet
    jason jay jayden jean jennifer jessica jill joan joanne joe john jonathan joseph josh
    joshua joyce julie karen kate katherine kathleen kayleigh keith kelly kenneth kevin
    kieran kim kirsty laura lauren leah lee leo lewis liam lily linda lisa logan louise lucy
    luke lynn maisie malcolm mandy margaret maria marie mark martin mary matthew maureen
    megan melissa michael michelle mohammed muhammad nathan neil nicholas nicola noah norman
    olive oliver olivia oscar owen pamela patricia paul pauline peter philip rachel rebecca
    reece rhys richard rita robert robin ronald rose ross ruby russell ruth ryan sally
    samantha samuel sandra sarah scott sean sharon shaun sheila shirley simon sophia sophie
    stacey stephanie stephen steven stuart susan teresa thomas tina toby tom tony tracey
    tracy trevor valerie vanessa victoria wayne wendy william zoe
"""
FORENAMES = frozenset(_FORENAME_LIST.split())


_PLACE_LIST = """
    street road lane avenue hill bridge park green cross square gate way station central
    north south east west town city village row terrace place court field fields moor vale
    bay quay wharf market end common heath wood
"""
PLACE_WORDS = frozenset(_PLACE_LIST.split())
"""Words after a forename that make a place ("George Street", "Victoria Station")."""


def looks_personal(value: str, *, place_names: bool = False) -> str | None:
    """Why the value looks like personal data (a short phrase), or None.

    `place_names`: the column holds place names (a station's name, a district), where a
    forename before a place word is a street or a station ("George Street"), not a name.
    """
    if not value or len(value) < 5:
        return None
    if "@" in value and _EMAIL.search(value):
        return "an e-mail address"
    if _PHONE.search(value):
        return "a telephone number"
    if _POSTCODE.search(value) and _has_postcode(value):
        return "a postcode"
    if _STREET.search(value):
        return "a street address"
    if _TITLE.search(value):
        return "a person's name"
    for first, second in _CAPITALISED_PAIR.findall(value):
        if first.lower() in FORENAMES and not (place_names and second.lower() in PLACE_WORDS):
            return "a person's name"
    if len(value.split()) > NARRATIVE_WORDS:
        return "narrative text"
    return None


def _has_postcode(value: str) -> bool:
    """A postcode match that is not a code such as `SG1 QMH`: the inward part is digit+2
    letters, and the outward part starts the value or follows a space or comma."""
    for match in _POSTCODE.finditer(value):
        start = match.start()
        if start == 0 or value[start - 1] in " ,(":
            return True
    return False


def personal_reasons(text: pd.Series, *, place_names: bool = False) -> pd.Series:
    """`looks_personal` for a column, computed once per distinct value."""
    unique = pd.unique(text.to_numpy())
    found = {v: looks_personal(v, place_names=place_names) for v in unique if isinstance(v, str)}
    found = {v: r for v, r in found.items() if r is not None}
    if not found:
        return pd.Series(None, index=text.index, dtype=object)
    return text.map(found).astype(object).where(text.isin(list(found)), None)
