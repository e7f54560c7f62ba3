"""The condition language of declared outcomes: which incidents (or events) count.

A condition is a short sentence over what the extracts carry, written in `trial.toml`:

    where = "tag in @domestic_abuse_tags and event risk_assessment"
    where = "(tag in @mental_health_tags or marker in @warning_markers) and out_of_hours"
    where = "closing_code in ['Advice given', 'Words of advice'] and not attended"

Grammar (keywords in any case; `not` binds tighter than `and`, `and` tighter than `or`):

    condition := term ("or" term)*
    term      := factor ("and" factor)*
    factor    := "not" factor | "(" condition ")" | predicate
    predicate := FIELD "in" codes              at least one of the codes
               | FIELD "any" "of" codes        the same
               | FIELD "all" "of" codes        every one of them (tags, markers, roles)
               | "event" KIND                  an event of that declared kind linked to it
               | FLAG                          attended, out_of_hours, office_hours
               | OUTCOME                       the condition of another incident outcome
               | "all"                         every incident
    codes     := "@" LIST | "[" code ("," code)* "]"
    code      := a bare code (letters, digits, _ . / : + -) or a quoted string

Incident fields: `tag` (the incident's qualifiers), `marker` (a warning marker a linked
person held on the incident's date), `role` (a person linked in that role),
`opening_code`, `closing_code`, `grade`, `channel`, `beat`. An event condition (an
`event_count` outcome's `where`) uses the event's own code and text columns as fields.

`parse_condition` gives a frozen tree (`Codes`, `Flag`, `Event`, `Ref`, `Every`, `And`,
`Or`, `Not`) with every `@LIST` already replaced by its codes; mistakes raise
`ConditionError` naming the word and what would be right.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

__all__ = [
    "FLAGS",
    "INCIDENT_FIELDS",
    "MULTI_VALUED",
    "And",
    "Codes",
    "Condition",
    "ConditionError",
    "Event",
    "Every",
    "Flag",
    "Not",
    "Or",
    "Ref",
    "inline",
    "parse_condition",
    "predicates",
    "references",
]

INCIDENT_FIELDS = (
    "tag",
    "marker",
    "role",
    "opening_code",
    "closing_code",
    "grade",
    "channel",
    "beat",
)
"""What an incident condition can test, besides flags, events and other outcomes."""
MULTI_VALUED = ("tag", "marker", "role")
"""Fields an incident can hold several values of, so `all of` means something."""
FLAGS = ("attended", "out_of_hours", "office_hours")
KEYWORDS = ("and", "or", "not", "in", "any", "all", "of", "event")


class ConditionError(ValueError):
    """A condition that cannot be read, or names what the protocol does not have."""


@dataclass(frozen=True)
class Codes:
    """`field in codes` (any of them), or with `every` all of them."""

    field: str
    codes: tuple[str, ...]
    every: bool = False
    source: str | None = None
    """The `[codes]` list they came from (`@name`), for wording; None for a literal list."""


@dataclass(frozen=True)
class Flag:
    name: str


@dataclass(frozen=True)
class Event:
    kind: str


@dataclass(frozen=True)
class Ref:
    """Another declared outcome: its condition, in place."""

    outcome: str


@dataclass(frozen=True)
class Every:
    """Every incident (or event)."""


@dataclass(frozen=True)
class And:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    part: Condition


Condition = Codes | Flag | Event | Ref | Every | And | Or | Not

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<open>\() | (?P<close>\)) | (?P<lbracket>\[) | (?P<rbracket>\]) | (?P<comma>,)
      | (?P<list>@[A-Za-z_][A-Za-z0-9_]*)
      | (?P<quoted>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<word>[A-Za-z0-9_./:+-]+)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    at: int


def _tokens(text: str) -> list[_Token]:
    out = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ConditionError(f"cannot read {text[position:].strip()[:20]!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "quoted":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        out.append(_Token(kind, value, match.start(kind)))
        position = match.end()
    return out


class _Parser:
    def __init__(
        self,
        text: str,
        *,
        fields: tuple[str, ...],
        code_lists: Mapping[str, tuple[str, ...]],
        events: tuple[str, ...],
        outcomes: tuple[str, ...],
        flags: tuple[str, ...],
    ) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0
        self.fields = fields
        self.code_lists = code_lists
        self.events = events
        self.outcomes = outcomes
        self.flags = flags

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def word(self) -> str | None:
        token = self.peek()
        return token.text.lower() if token is not None and token.kind == "word" else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise ConditionError(f"{self.text!r} ends too soon")
        self.i += 1
        return token

    def expect_word(self, word: str) -> None:
        token = self.take()
        if token.kind != "word" or token.text.lower() != word:
            raise ConditionError(f"expected '{word}' at {self._at(token)}")

    def _at(self, token: _Token) -> str:
        return f"{self.text[token.at :].strip()[:25]!r}"

    def parse(self) -> Condition:
        if not self.tokens:
            raise ConditionError("the condition is empty; write `all` to count every incident")
        condition = self.condition()
        token = self.peek()
        if token is not None:
            raise ConditionError(f"unexpected {self._at(token)}; expected 'and', 'or' or the end")
        return condition

    def condition(self) -> Condition:
        parts = [self.term()]
        while self.word() == "or":
            self.take()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def term(self) -> Condition:
        parts = [self.factor()]
        while self.word() == "and":
            self.take()
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def factor(self) -> Condition:
        token = self.take()
        if token.kind == "open":
            inner = self.condition()
            closing = self.take() if self.peek() is not None else None
            if closing is None or closing.kind != "close":
                raise ConditionError(f"a '(' at {self._at(token)} is not closed")
            return inner
        if token.kind != "word":
            raise ConditionError(f"expected a field, flag or outcome at {self._at(token)}")
        name = token.text.lower()
        if name == "not":
            return Not(self.factor())
        if name == "all" and self.word() != "of":
            return Every()
        if name == "event":
            kind = self.take()
            if kind.kind != "word" or kind.text not in self.events:
                known = ", ".join(self.events) or "none is declared"
                raise ConditionError(
                    f"no event extract {kind.text!r} at {self._at(kind)}; declared events: {known}"
                )
            return Event(kind.text)
        if name in self.flags:
            return Flag(name)
        if token.text in self.fields:
            return self.codes(token.text)
        if token.text in self.outcomes:
            return Ref(token.text)
        expected = [*self.fields, *self.flags]
        hint = f"; expected a field ({', '.join(expected)})"
        if self.outcomes:
            hint += f", another outcome ({', '.join(self.outcomes)})"
        raise ConditionError(f"unknown field {token.text!r} at {self._at(token)}{hint}")

    def codes(self, field: str) -> Codes:
        mode = self.take()
        every = False
        if mode.kind == "word" and mode.text.lower() in ("any", "all"):
            every = mode.text.lower() == "all"
            self.expect_word("of")
            if every and field not in MULTI_VALUED:
                raise ConditionError(
                    f"'{field} all of' cannot hold: an incident has one {field}; use 'in'"
                )
        elif not (mode.kind == "word" and mode.text.lower() == "in"):
            raise ConditionError(f"expected 'in', 'any of' or 'all of' after {field!r}")
        token = self.take()
        if token.kind == "list":
            name = token.text[1:]
            if name not in self.code_lists:
                known = ", ".join(f"@{k}" for k in self.code_lists) or "none"
                raise ConditionError(
                    f"unknown code list {token.text!r}; the protocol's [codes] has {known}"
                )
            listed = self.code_lists[name]
            if not listed:
                raise ConditionError(f"the code list {token.text!r} is empty")
            return Codes(field, tuple(listed), every, name)
        if token.kind != "lbracket":
            raise ConditionError(f"expected @LIST or [codes] after {field!r} at {self._at(token)}")
        values: list[str] = []
        while True:
            item = self.take()
            if item.kind == "rbracket" and not values:
                raise ConditionError(f"an empty list of codes for {field!r}")
            if item.kind not in ("word", "quoted"):
                raise ConditionError(f"expected a code at {self._at(item)}")
            values.append(item.text)
            separator = self.take()
            if separator.kind == "rbracket":
                break
            if separator.kind != "comma":
                raise ConditionError(f"expected ',' or ']' at {self._at(separator)}")
        return Codes(field, tuple(dict.fromkeys(values)), every, None)


def parse_condition(
    text: str,
    *,
    fields: tuple[str, ...] = INCIDENT_FIELDS,
    code_lists: Mapping[str, tuple[str, ...]] | None = None,
    events: tuple[str, ...] = (),
    outcomes: tuple[str, ...] = (),
    flags: tuple[str, ...] = FLAGS,
) -> Condition:
    """The condition `text` as a tree (see the module docstring for the grammar).

    Parameters
    ----------
    fields : the fields a predicate can test (incident fields, or an event's columns).
    code_lists : the protocol's `[codes]`, for `@name`.
    events : the declared event kinds, for `event KIND`.
    outcomes : the outcomes a bare name may refer to.
    flags : the flags allowed (none in an event condition).
    """
    return _Parser(
        text,
        fields=fields,
        code_lists=code_lists or {},
        events=events,
        outcomes=outcomes,
        flags=flags,
    ).parse()


def predicates(condition: Condition) -> Iterator[Condition]:
    """Every leaf of the tree, depth first."""
    if isinstance(condition, And | Or):
        for part in condition.parts:
            yield from predicates(part)
    elif isinstance(condition, Not):
        yield from predicates(condition.part)
    else:
        yield condition


def references(condition: Condition) -> tuple[str, ...]:
    """The other outcomes the condition names, in order."""
    return tuple(dict.fromkeys(p.outcome for p in predicates(condition) if isinstance(p, Ref)))


def inline(condition: Condition, lookup: Callable[[str], Condition]) -> Condition:
    """The condition with every `Ref` replaced by its outcome's (inlined) condition."""
    if isinstance(condition, Ref):
        return inline(lookup(condition.outcome), lookup)
    if isinstance(condition, And):
        return And(tuple(inline(p, lookup) for p in condition.parts))
    if isinstance(condition, Or):
        return Or(tuple(inline(p, lookup) for p in condition.parts))
    if isinstance(condition, Not):
        return Not(inline(condition.part, lookup))
    return condition
