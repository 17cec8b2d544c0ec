"""FACS Action Unit strings as written in the annotation sheets (docs/design.md, Datasets) → structured codes and AU
sets.

The official sheets are hand-typed: `4+L10`, `R2+15`, `7B`, `A/L12`, `10A/B`, `ref(7B)+43`, `R14+17+soft focus`,
`(R6 or R12)+R15`, `?`, and Excel cells that are ints or floats (`12`, `12.0`). The MEB benchmark also reads a
side written after the number (`AU12R`) and the full-width comma of a CAS(ME)³ part C row (`4，7`); full-width
characters are read as their ASCII forms. One bad cell must never crash a run, so `parse_au_string` never raises:
problems come back in `.errors` (the sample is then skipped by the loader) and harmless notes (free text ignored, a
stray space) in `.flags`.
"""

from __future__ import annotations

import itertools
import math
import numbers
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Optional

#: Prefix letters: L/R are a side, A/T/B are FACS modifiers (kept, but they do not change which AU it is).
SIDES = ("L", "R")
MODIFIERS = ("A", "T", "B")
#: FACS intensity marks, A (trace) … E (maximum).
INTENSITIES = ("A", "B", "C", "D", "E")
#: FACS numbers go up to the 90s (head, eye and gross-behaviour codes); anything else is a typo.
MAX_AU = 99
#: Cap on the ambiguity expansion so a pathological string cannot blow up memory.
MAX_ALTERNATIVES = 64

_CODE = re.compile(
    r"""^(?:AU)?\s*
        (?P<prefix>(?:[LRATB]\s*/\s*)*[LRATB])?\s*
        (?P<num>\d{1,3})
        (?P<side>[LR])?
        (?P<intensity>[A-E](?:\s*/\s*[A-E])?)?$""",
    re.IGNORECASE | re.VERBOSE,
)
_REF = re.compile(r"^ref\s*\((?P<inner>[^()]*)\)$", re.IGNORECASE)
_OR = re.compile(r"\s+or\s+|\s*\|\s*", re.IGNORECASE)
_FLOATY = re.compile(r"^\d+\.0*$")


@dataclass(frozen=True)
class AUCode:
    """One FACS code such as `L12A`: AU number, prefix letters (side L/R, modifiers A/T/B), intensity, ref()."""

    au: int
    prefix: tuple[str, ...] = ()
    intensity: Optional[str] = None
    ref: bool = False

    @property
    def side(self) -> Optional[str]:
        return next((p for p in self.prefix if p in SIDES), None)

    @property
    def modifiers(self) -> tuple[str, ...]:
        return tuple(p for p in self.prefix if p in MODIFIERS)

    def __str__(self) -> str:
        text = "/".join(self.prefix) + str(self.au) + (self.intensity or "")
        return f"ref({text})" if self.ref else text


@dataclass
class ParsedAUs:
    """The result of parsing one annotation cell.

    `aus` is every AU the cell mentions (for an ambiguous cell, the union of all alternatives);
    `alternatives` lists the possible AU sets of an `X or Y` cell in the order written (first = leftmost choice);
    `codes` holds the structured codes in order, each position a tuple of alternatives (length 1 when certain).
    """

    raw: str
    aus: frozenset[int] = frozenset()
    codes: tuple[tuple[AUCode, ...], ...] = ()
    unknown: bool = False
    ambiguous: bool = False
    alternatives: tuple[frozenset[int], ...] = ()
    flags: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Usable as a label: no malformed code and at least one AU (or an explicit `?`)."""
        return not self.errors

    def resolve(self, policy: str) -> Optional[frozenset[int]]:
        """The AU set under an `or_policy`; None means drop the sample."""
        if not self.ambiguous:
            return self.aus
        if policy == "union":
            return self.aus
        if policy == "first":
            return self.alternatives[0]
        return None


def _cell_text(value: Any) -> tuple[Optional[str], list[str], list[str]]:
    """Turn an Excel cell into text; ints and integral floats become their integer (12.0 → '12', not '120')."""
    flags: list[str] = []
    errors: list[str] = []
    if value is None:
        return "", flags, errors
    if isinstance(value, bool):
        errors.append(f"not an AU code: {value!r}")
        return None, flags, errors
    if isinstance(value, numbers.Integral):
        return str(int(value)), flags, errors
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return "", flags, errors
        if math.isfinite(number) and number.is_integer():
            return str(int(number)), flags, errors
        errors.append(f"not an AU number: {value!r}")
        return None, flags, errors
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    try:
        text = str(value)
    except Exception:
        errors.append("unreadable cell")
        return None, flags, errors
    return text, flags, errors


def _split_top(text: str, sep: str = "+") -> list[str]:
    """Split on `sep` outside parentheses, so `(R6 or R12)+R15` and `ref(7B)+43` keep their groups."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        if ch in sep and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _strip_parens(text: str) -> str:
    """`(R6 or R12)` → `R6 or R12` (only when the parentheses enclose the whole term)."""
    text = text.strip()
    while text.startswith("(") and text.endswith(")"):
        depth = 0
        for i, ch in enumerate(text):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(text) - 1:
                return text
        text = text[1:-1].strip()
    return text


def parse_code(token: str) -> Optional[AUCode]:
    """One code like `L12A`, `A/L12`, `10A/B`, `ref(7B)`, `AU4`, `12.0`; None when it is not a code."""
    token = token.strip()
    ref = False
    match = _REF.match(token)
    if match:
        ref = True
        token = match.group("inner").strip()
    if _FLOATY.match(token):
        token = token.split(".")[0]
    match = _CODE.match(token)
    if not match:
        return None
    number = int(match.group("num"))
    if not 1 <= number <= MAX_AU:
        return None
    prefix_text = match.group("prefix") or ""
    prefix = tuple(p.strip().upper() for p in prefix_text.split("/") if p.strip())
    side_after = (match.group("side") or "").upper()
    if side_after:  # `12R`: the side written after the number
        if any(p in SIDES for p in prefix):
            return None  # two sides (`L12R`): not a code
        prefix = (*prefix, side_after)
    intensity = match.group("intensity")
    if intensity:
        intensity = "/".join(p.strip().upper() for p in intensity.split("/"))
    return AUCode(au=number, prefix=prefix, intensity=intensity or None, ref=ref)


def _looks_like_code(term: str) -> bool:
    """A term with a digit was meant as a code; a term without one is free text ('soft focus')."""
    return any(ch.isdigit() for ch in term)


def parse_au_string(value: Any) -> ParsedAUs:
    """Parse one annotation cell; never raises (bad codes are reported in `.errors`)."""
    try:
        return _parse(value)
    except Exception as err:
        return ParsedAUs(raw=_safe_repr(value), errors=[f"cannot parse AU string: {err}"])


def _safe_repr(value: Any) -> str:
    try:
        return value if isinstance(value, str) else repr(value)
    except Exception:
        return "<unprintable>"


def _parse(value: Any) -> ParsedAUs:
    text, flags, errors = _cell_text(value)
    raw = text if text is not None else _safe_repr(value)
    if text is None:
        return ParsedAUs(raw=raw, flags=flags, errors=errors)
    wide = unicodedata.normalize("NFKC", text)
    if wide != text:  # full-width `，` `＋` `１２` typed with a CJK input method read as `,` `+` `12`
        flags.append("full-width characters")
        text = wide
    if text != text.strip():
        flags.append("stray whitespace")
    stripped = text.strip()
    if not stripped:
        return ParsedAUs(raw=raw, flags=flags, errors=["empty Action Units cell"])

    unknown = False
    positions: list[tuple[AUCode, ...]] = []
    for term in _split_top(stripped.replace(",", "+").replace(";", "+")):
        term = term.strip()
        if not term:
            if stripped not in {"+"}:
                flags.append("empty term")
            continue
        if term == "?" or term.strip("()") == "?":
            unknown = True
            continue
        inner = _strip_parens(term)
        options = _OR.split(inner) if _OR.search(inner) else [inner]
        if len(options) == 1 and "+" in inner and inner != term:
            # `(4+7)` written as a group: the same as 4+7
            options_codes = [parse_code(t) for t in _split_top(inner)]
            if all(c is not None for c in options_codes):
                positions.extend((c,) for c in options_codes if c is not None)
                continue
        choices: list[AUCode] = []
        bad = False
        for option in options:
            code = parse_code(_strip_parens(option))
            if code is None:
                bad = True
                break
            choices.append(code)
        if bad:
            if _looks_like_code(term):
                errors.append(f"bad AU code {term!r}")
            else:
                flags.append(f"free text ignored: {term!r}")
            continue
        positions.append(tuple(choices))

    aus = frozenset(c.au for pos in positions for c in pos)
    ambiguous = any(len({c.au for c in pos}) > 1 for pos in positions)
    alternatives: tuple[frozenset[int], ...] = ()
    if ambiguous:
        combos = itertools.islice(itertools.product(*positions), MAX_ALTERNATIVES)
        seen: list[frozenset[int]] = []
        for combo in combos:
            choice = frozenset(c.au for c in combo)
            if choice not in seen:
                seen.append(choice)
        alternatives = tuple(seen)
        flags.append("ambiguous ('or')")
    elif aus:
        alternatives = (aus,)
    if not aus and not unknown and not errors:
        errors.append(f"no AU code in {stripped!r}")
    return ParsedAUs(
        raw=raw,
        aus=aus,
        codes=tuple(positions),
        unknown=unknown,
        ambiguous=ambiguous,
        alternatives=alternatives,
        flags=flags,
        errors=errors,
    )


def format_codes(codes: list[AUCode] | tuple[AUCode, ...]) -> str:
    """The canonical string of a list of codes (`+`-joined), inverse of parse_au_string for certain codes."""
    return "+".join(str(c) for c in codes)


#: FACS names, for readable plot titles.
AU_NAMES: dict[int, str] = {
    1: "inner brow raiser",
    2: "outer brow raiser",
    4: "brow lowerer",
    5: "upper lid raiser",
    6: "cheek raiser",
    7: "lid tightener",
    9: "nose wrinkler",
    10: "upper lip raiser",
    12: "lip corner puller",
    14: "dimpler",
    15: "lip corner depressor",
    16: "lower lip depressor",
    17: "chin raiser",
    18: "lip pucker",
    20: "lip stretcher",
    23: "lip tightener",
    24: "lip pressor",
    25: "lips part",
    26: "jaw drop",
    43: "eyes closed",
}


def au_title(au: str) -> str:
    """`AU12` → `AU12 (lip corner puller)`."""
    name = AU_NAMES.get(int(au[2:])) if au[2:].isdigit() else None
    return f"{au} ({name})" if name else au


def au_name(number: int) -> str:
    return f"AU{number}"


def au_number(name: str) -> int:
    """`AU12` → 12."""
    return int(name[2:])


__all__ = [
    "AU_NAMES",
    "INTENSITIES",
    "MODIFIERS",
    "SIDES",
    "AUCode",
    "ParsedAUs",
    "au_name",
    "au_number",
    "au_title",
    "format_codes",
    "parse_au_string",
    "parse_code",
]
