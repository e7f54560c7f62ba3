"""What is wrong with a date or a date and time that could not be read, in words.

Dates are read as YYYY-MM-DD or DD/MM/YYYY (day first, as UK systems write them); times as
HH:MM or HH:MM:SS on the 24-hour clock, local unless an offset is given. A value that does
not read gets the reason that fits it: a day that does not exist, a month above 12 (a US
month-first date), a 12-hour time with AM/PM, a date where a time was needed, a time of
day that does not exist.
"""

from __future__ import annotations

import calendar
import re

__all__ = ["date_problem", "datetime_problem"]

_DATE_FORMS = "YYYY-MM-DD or DD/MM/YYYY"
_DATETIME_FORMS = (
    "YYYY-MM-DD HH:MM[:SS] or DD/MM/YYYY HH:MM[:SS] (24-hour, local), or ISO 8601 with a UTC offset"
)
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})")
_DMY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})(?!\d)")
_TIME = re.compile(r"[ T](\d{1,2}):(\d{2})(?::(\d{2}))?")
_AMPM = re.compile(r"\d\s*(?:am|pm|a\.m\.|p\.m\.)\s*$", re.IGNORECASE)


def _day_problem(year: int, month: int, day: int, *, day_first: bool) -> str | None:
    if month > 12:
        if day_first and day <= 12:
            return (
                f"month {month} does not exist: dates are read day first (DD/MM/YYYY), and "
                "this looks like a US month-first date"
            )
        return f"month {month} does not exist"
    if month < 1:
        return "month 0 does not exist"
    if day < 1 or day > calendar.monthrange(year, month)[1]:
        return f"{calendar.month_name[month]} {year} has no day {day}"
    return None


def _date_part(value: str) -> tuple[str | None, bool]:
    """(what is wrong with the value's date part, or None; whether a date part was found)."""
    iso = _ISO.match(value)
    if iso:
        year, month, day = (int(x) for x in iso.groups())
        return _day_problem(year, month, day, day_first=False), True
    dmy = _DMY.match(value)
    if dmy:
        day, month, year = (int(x) for x in dmy.groups())
        if len(dmy.group(3)) == 2:
            return f"a two-digit year ({dmy.group(3)}); write the year in full", True
        return _day_problem(year, month, day, day_first=True), True
    return None, False


def date_problem(value: str) -> str:
    """Why a value is not a date this import reads."""
    problem, found = _date_part(value)
    if problem:
        return problem
    if not found:
        return f"not a date; expected {_DATE_FORMS}"
    return f"not a date in a form this import reads; expected {_DATE_FORMS}"


def datetime_problem(value: str) -> str:
    """Why a value is not a date and time this import reads."""
    if _AMPM.search(value):
        return "a 12-hour time with AM/PM; give the time on the 24-hour clock (e.g. 14:05)"
    problem, found = _date_part(value)
    if problem:
        return problem
    if not found:
        return f"not a date and time; expected {_DATETIME_FORMS}"
    time = _TIME.search(value)
    if time is None:
        return "a date without a time of day; this column needs both (e.g. 2016-04-12 14:05)"
    hours, minutes = int(time.group(1)), int(time.group(2))
    seconds = int(time.group(3) or 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        return f"{time.group(0).strip()} is not a time of day (00:00 to 23:59:59)"
    return f"not a date and time in a form this import reads; expected {_DATETIME_FORMS}"
