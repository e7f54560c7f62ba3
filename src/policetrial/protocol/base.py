"""The base of every protocol table: frozen, and strict about keys it does not know."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

__all__ = ["IDENTIFIER", "Frozen"]

IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
"""Names the protocol gives to outcomes, events and their columns: they become SQL column
and table names, so lower case letters, digits and underscores, starting with a letter."""


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
