"""Questionnaire instruments as files: `instruments/*.toml` read once into frozen objects.

An instrument lists its items (id, domain, response scale, reverse keying, subscale,
scoring rule: a rating or a keyed best answer), its subscales and composite scales with
their scoring rule (mean, prorated sum or percent of range), and its missing-data rule
(prorate when at most a fraction of a score's items is unanswered). An instrument whose
wording is not openly licensed ships with `wording = "private"` and no item text; the trial
team supplies the text in a private wording file, applied with `apply_wording`.
"""

from __future__ import annotations

import tomllib
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from policetrial.errors import SurveyError

__all__ = [
    "OBJECTIVES",
    "Instrument",
    "Item",
    "MissingRule",
    "Questionnaire",
    "ResponseScale",
    "Scale",
    "Subscale",
    "apply_wording",
    "builtin_instrument_path",
    "builtin_instruments",
    "load_instrument",
    "load_questionnaire",
    "load_wording",
    "parse_instrument",
]

OBJECTIVES = ("identify", "record", "respond", "refer", "review")
Objective = Literal["identify", "record", "respond", "refer", "review"]
ScoreRule = Literal["mean", "sum", "percent"]
_ID = r"^[a-z][a-z0-9_]*$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ResponseScale(_Frozen):
    """Whole-number response codes from `min` to `max`, with optional labels."""

    min: int
    max: int
    labels: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _ordered(self) -> ResponseScale:
        if self.max <= self.min:
            raise ValueError(f"max ({self.max}) must be greater than min ({self.min})")
        if self.labels and len(self.labels) != self.max - self.min + 1:
            raise ValueError(
                f"{len(self.labels)} labels for {self.max - self.min + 1} response codes "
                f"{self.min}..{self.max}"
            )
        return self


class MissingRule(_Frozen):
    """Prorate a score when at most `max_missing_fraction` of its items are unanswered."""

    rule: Literal["prorate", "complete"] = "prorate"
    max_missing_fraction: float = Field(0.2, ge=0, lt=1)

    @property
    def allowed_fraction(self) -> float:
        return 0.0 if self.rule == "complete" else self.max_missing_fraction


class Item(_Frozen):
    id: str = Field(pattern=_ID, max_length=32)
    domain: str = Field(min_length=1)
    subscale: str
    response_scale: str
    reverse: bool = False
    scoring: Literal["rating", "keyed"] = "rating"
    key: int | None = None
    objective: Objective | None = None
    text: str | None = None
    options: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _keyed(self) -> Item:
        if self.scoring == "keyed":
            if self.key is None:
                raise ValueError("a keyed item needs `key`, the code of its best answer")
            if self.reverse:
                raise ValueError("a keyed item cannot be reverse coded")
        elif self.key is not None:
            raise ValueError('`key` is only for items with scoring = "keyed"')
        return self


class Subscale(_Frozen):
    label: str
    score: ScoreRule = "mean"
    missing: MissingRule | None = None


class Scale(_Frozen):
    """A composite score over whole subscales."""

    label: str
    subscales: tuple[str, ...] = Field(min_length=1)
    score: ScoreRule = "mean"
    missing: MissingRule | None = None


class Instrument(_Frozen):
    """One questionnaire instrument. Build with `load_instrument` or `parse_instrument`."""

    schema_version: Literal[1] = 1
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)
    title: str
    version: str = Field(min_length=1)
    wording: Literal["included", "private"]
    licence: str
    sources: tuple[str, ...] = ()
    missing: MissingRule = MissingRule()
    response_scales: dict[str, ResponseScale] = Field(min_length=1)
    subscales: dict[str, Subscale] = Field(min_length=1)
    scales: dict[str, Scale] = Field(default_factory=dict)
    items: tuple[Item, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _consistent(self) -> Instrument:
        seen: set[str] = set()
        for i, item in enumerate(self.items):
            where = f"items[{i}] (id {item.id!r})"
            if item.id in seen:
                raise ValueError(f"{where}: item id {item.id!r} is used twice")
            seen.add(item.id)
            if item.response_scale not in self.response_scales:
                raise ValueError(
                    f"{where}: response_scale {item.response_scale!r} is not defined; "
                    f"expected one of {sorted(self.response_scales)}"
                )
            if item.subscale not in self.subscales:
                raise ValueError(
                    f"{where}: subscale {item.subscale!r} is not defined; "
                    f"expected one of {sorted(self.subscales)}"
                )
            scale = self.response_scales[item.response_scale]
            if item.key is not None and not scale.min <= item.key <= scale.max:
                raise ValueError(f"{where}: key {item.key} is outside {scale.min}..{scale.max}")
            if item.options and len(item.options) != scale.max - scale.min + 1:
                raise ValueError(
                    f"{where}: {len(item.options)} options for response codes "
                    f"{scale.min}..{scale.max}"
                )
            if self.wording == "private" and (item.text or item.options):
                raise ValueError(
                    f"{where}: an instrument with private wording ships no text; put the "
                    "wording in the trial team's private wording file"
                )
            if self.wording == "included" and not item.text:
                raise ValueError(f"{where}: `text` is missing (wording = 'included')")
            if self.wording == "included" and item.scoring == "keyed" and not item.options:
                raise ValueError(f"{where}: a keyed item needs its `options`")
        for name in self.subscales:
            if not any(item.subscale == name for item in self.items):
                raise ValueError(f"subscales.{name}: no item belongs to it")
        for name, composite in self.scales.items():
            if name in self.subscales:
                raise ValueError(f"scales.{name}: a subscale has the same id")
            unknown = [s for s in composite.subscales if s not in self.subscales]
            if unknown:
                raise ValueError(
                    f"scales.{name}: unknown subscales {unknown}; "
                    f"expected some of {sorted(self.subscales)}"
                )
        for score in self.score_ids:
            rule = self.rule_for(score)
            ranges = {self.scored_range(item) for item in self.items_for(score)}
            if rule != "percent" and len(ranges) > 1:
                where = "subscales" if score in self.subscales else "scales"
                raise ValueError(
                    f"{where}.{score}: items with different scored ranges {sorted(ranges)} "
                    'cannot be combined by "mean" or "sum"; use score = "percent"'
                )
        return self

    @property
    def score_ids(self) -> tuple[str, ...]:
        """Subscales, then composite scales, in file order."""
        return (*self.subscales, *self.scales)

    def items_for(self, score: str) -> tuple[Item, ...]:
        if score in self.subscales:
            return tuple(item for item in self.items if item.subscale == score)
        if score in self.scales:
            members = set(self.scales[score].subscales)
            return tuple(item for item in self.items if item.subscale in members)
        raise SurveyError(f"{self.id}: no score {score!r}; expected one of {list(self.score_ids)}")

    def rule_for(self, score: str) -> ScoreRule:
        return (self.subscales[score] if score in self.subscales else self.scales[score]).score

    def label_for(self, score: str) -> str:
        return (self.subscales[score] if score in self.subscales else self.scales[score]).label

    def missing_for(self, score: str) -> MissingRule:
        own = (self.subscales[score] if score in self.subscales else self.scales[score]).missing
        return own or self.missing

    def response_range(self, item: Item) -> tuple[int, int]:
        """The codes an officer may answer: what import and submission accept."""
        scale = self.response_scales[item.response_scale]
        return scale.min, scale.max

    def scored_range(self, item: Item) -> tuple[int, int]:
        """The range of the item's score: 0..1 for keyed items, the response range otherwise."""
        return (0, 1) if item.scoring == "keyed" else self.response_range(item)

    def score_bounds(self, score: str) -> tuple[float, float]:
        """Lowest and highest possible score (for floor and ceiling effects)."""
        rule = self.rule_for(score)
        if rule == "percent":
            return 0.0, 100.0
        items = self.items_for(score)
        low, high = self.scored_range(items[0])
        if rule == "sum":
            return float(low * len(items)), float(high * len(items))
        return float(low), float(high)

    @property
    def worded(self) -> bool:
        """True when every item has its text (always, unless private wording is missing)."""
        return all(item.text for item in self.items)


def builtin_instruments() -> list[str]:
    """Names of the instruments shipped with the package (`connect-officer`, `cami12`)."""
    folder = resources.files("policetrial.protocol") / "instruments"
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def builtin_instrument_path(name: str) -> Path:
    if name not in builtin_instruments():
        raise SurveyError(
            f"no built-in instrument {name!r}; expected one of {builtin_instruments()} or a path"
        )
    return Path(str(resources.files("policetrial.protocol") / "instruments" / f"{name}.toml"))


def load_instrument(name_or_path: str | Path, *, root: Path | None = None) -> Instrument:
    """A built-in instrument by name, or an instrument file (relative paths from `root`)."""
    text_name = str(name_or_path)
    if text_name in builtin_instruments():
        path = builtin_instrument_path(text_name)
    else:
        path = Path(name_or_path)
        if not path.is_absolute() and root is not None:
            path = root / path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SurveyError(
            f"{path}: no such instrument file (built-in instruments: {builtin_instruments()})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SurveyError(f"{path}: cannot read the instrument ({exc})") from None
    return parse_instrument(text, source=str(path))


def parse_instrument(text: str, *, source: str = "instrument.toml") -> Instrument:
    """Validate instrument text (TOML) into a frozen `Instrument`; errors name the key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SurveyError(f"{source}: not valid TOML: {exc}") from None
    try:
        return Instrument.model_validate(raw)
    except ValidationError as exc:
        raise SurveyError(_describe(exc, raw, source)) from None


def _describe(exc: ValidationError, raw: dict[str, Any], source: str) -> str:
    problems = []
    for error in exc.errors():
        loc = list(error["loc"])
        parts: list[str] = []
        for i, part in enumerate(loc):
            if isinstance(part, int) and i > 0 and loc[i - 1] == "items":
                parts[-1] = f"items[{part}]"
                item = raw.get("items", [])
                if isinstance(item, list) and part < len(item) and isinstance(item[part], dict):
                    parts[-1] += f" (id {item[part].get('id')!r})"
            else:
                parts.append(str(part))
        key = ".".join(parts) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            problems.append(f"key '{key}' is missing")
        elif error["type"] == "extra_forbidden":
            problems.append(f"key '{key}' is not an instrument setting")
        elif not parts:
            problems.append(message)
        else:
            problems.append(f"key '{key}': {message} (got {error.get('input')!r})")
    return f"{source}: " + "; ".join(problems)


@dataclass(frozen=True)
class Wording:
    """Private wording: item text, options and response labels, by instrument id."""

    source: str
    items: Mapping[str, Mapping[str, str]]
    options: Mapping[str, Mapping[str, tuple[str, ...]]]
    labels: Mapping[str, Mapping[str, tuple[str, ...]]]


def load_wording(path: str | Path) -> Wording:
    """Read a private wording file.

    The file is TOML with one table per instrument id::

        [cami12.items]
        cami01 = "..."
        [cami12.options]        # only for keyed items
        [cami12.labels]         # optional: replace a response scale's labels
        agree5 = ["...", "...", "...", "...", "..."]
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SurveyError(f"{path}: no such wording file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SurveyError(f"{path}: cannot read the wording file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SurveyError(f"{path}: not valid TOML: {exc}") from None
    items: dict[str, dict[str, str]] = {}
    options: dict[str, dict[str, tuple[str, ...]]] = {}
    labels: dict[str, dict[str, tuple[str, ...]]] = {}
    for instrument, table in raw.items():
        if not isinstance(table, dict):
            raise SurveyError(
                f"{path}: key '{instrument}' must be a table like [{instrument}.items]"
            )
        extra = set(table) - {"items", "options", "labels"}
        if extra:
            raise SurveyError(
                f"{path}: key '{instrument}.{sorted(extra)[0]}' is not a wording setting; "
                "expected items, options or labels"
            )
        for kind, target in (("items", items), ("options", options), ("labels", labels)):
            section = table.get(kind, {})
            if not isinstance(section, dict):
                raise SurveyError(f"{path}: key '{instrument}.{kind}' must be a table")
            for key, value in section.items():
                if kind == "items":
                    if not isinstance(value, str) or not value.strip():
                        raise SurveyError(f"{path}: key '{instrument}.items.{key}' must be text")
                    target.setdefault(instrument, {})[key] = value.strip()  # type: ignore[assignment]
                else:
                    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                        raise SurveyError(
                            f"{path}: key '{instrument}.{kind}.{key}' must be a list of text"
                        )
                    target.setdefault(instrument, {})[key] = tuple(value)  # type: ignore[assignment]
    return Wording(str(path), items, options, labels)


def apply_wording(instrument: Instrument, wording: Wording) -> Instrument:
    """A copy of `instrument` with the private wording filled in (the original is untouched)."""
    texts = wording.items.get(instrument.id, {})
    options = wording.options.get(instrument.id, {})
    labels = wording.labels.get(instrument.id, {})
    if not texts and not options and not labels:
        return instrument
    known = {item.id for item in instrument.items}
    for key in [*texts, *options]:
        if key not in known:
            raise SurveyError(
                f"{wording.source}: key '{instrument.id}.items.{key}' names no item of "
                f"{instrument.id}; expected ids like {sorted(known)[:3]}"
            )
    scales = dict(instrument.response_scales)
    for name, values in labels.items():
        if name not in scales:
            raise SurveyError(
                f"{wording.source}: key '{instrument.id}.labels.{name}' names no response scale; "
                f"expected one of {sorted(scales)}"
            )
        try:
            scales[name] = ResponseScale(min=scales[name].min, max=scales[name].max, labels=values)
        except ValidationError as exc:
            message = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise SurveyError(
                f"{wording.source}: key '{instrument.id}.labels.{name}': {message}"
            ) from None
    items = []
    for item in instrument.items:
        update: dict[str, Any] = {}
        if item.id in texts:
            update["text"] = texts[item.id]
        if item.id in options:
            low, high = instrument.response_range(item)
            if len(options[item.id]) != high - low + 1:
                raise SurveyError(
                    f"{wording.source}: key '{instrument.id}.options.{item.id}': "
                    f"{len(options[item.id])} options for codes {low}..{high}"
                )
            update["options"] = options[item.id]
        items.append(item.model_copy(update=update))
    missing = [
        item.id for item in items if not item.text or (item.scoring == "keyed" and not item.options)
    ]
    if missing:
        raise SurveyError(
            f"{wording.source}: no wording for {instrument.id} items {missing}; a private "
            "wording file must word every item"
        )
    return instrument.model_copy(update={"items": tuple(items), "response_scales": scales})


@dataclass(frozen=True)
class Questionnaire:
    """The instruments officers answer at each time point, with item ids unique across them."""

    instruments: tuple[Instrument, ...]

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for instrument in self.instruments:
            for item in instrument.items:
                if item.id in seen:
                    raise SurveyError(
                        f"item id {item.id!r} is in both {seen[item.id]} and {instrument.id}; "
                        "item ids must be unique across the questionnaire"
                    )
                seen[item.id] = instrument.id

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(i.id for i in self.instruments)

    @property
    def versions(self) -> dict[str, str]:
        return {i.id: i.version for i in self.instruments}

    def item(self, item_id: str) -> tuple[Instrument, Item]:
        for instrument in self.instruments:
            for item in instrument.items:
                if item.id == item_id:
                    return instrument, item
        raise KeyError(item_id)

    @property
    def item_ids(self) -> tuple[str, ...]:
        return tuple(item.id for i in self.instruments for item in i.items)

    def unworded(self) -> list[str]:
        return [i.id for i in self.instruments if not i.worded]

    def require_wording(self) -> None:
        missing = self.unworded()
        if missing:
            raise SurveyError(
                f"instrument(s) {missing} have private wording and none was supplied; give the "
                'trial team\'s wording file with --wording FILE or `wording = "FILE"` under '
                "[survey] in trial.toml"
            )


def load_questionnaire(
    names: Iterable[str],
    *,
    root: Path | None = None,
    wording: str | Path | None = None,
) -> Questionnaire:
    """The named instruments (built-in names or paths), with private wording applied."""
    instruments = [load_instrument(name, root=root) for name in names]
    if wording is not None:
        path = Path(wording)
        if not path.is_absolute() and root is not None:
            path = root / path
        text = load_wording(path)
        used = {i.id for i in instruments}
        for name in set(text.items) | set(text.options) | set(text.labels):
            if name not in used:
                warnings.warn(
                    f"{path}: wording for {name!r}, which is not in this questionnaire "
                    f"({sorted(used)}); ignored",
                    UserWarning,
                    stacklevel=2,
                )
        instruments = [apply_wording(i, text) for i in instruments]
    return Questionnaire(tuple(instruments))
