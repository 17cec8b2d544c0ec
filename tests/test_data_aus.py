"""AU-code parser: every form of docs/design.md (Datasets), Excel numbers, ambiguity, and properties (never raises,
round trip)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aullm.data.aus import AUCode, format_codes, parse_au_string


@pytest.mark.parametrize(
    ("value", "aus", "codes"),
    [
        ("4+L10", {4, 10}, ["4", "L10"]),
        ("L1+L2", {1, 2}, ["L1", "L2"]),
        ("R2+15", {2, 15}, ["R2", "15"]),
        ("4+9+L10+14", {4, 9, 10, 14}, ["4", "9", "L10", "14"]),
        ("4+7", {4, 7}, ["4", "7"]),
        ("7B", {7}, ["7B"]),
        ("L2", {2}, ["L2"]),
        ("4A", {4}, ["4A"]),
        ("A12", {12}, ["A12"]),
        ("L12A", {12}, ["L12A"]),
        ("10A/B", {10}, ["10A/B"]),
        ("A/L12", {12}, ["A/L12"]),
        ("ref(7B)+43", {7, 43}, ["ref(7B)", "43"]),
        ("1A+2B+L14C", {1, 2, 14}, ["1A", "2B", "L14C"]),
        ("T18+39", {18, 39}, ["T18", "39"]),
        ("R14+17+soft focus", {14, 17}, ["R14", "17"]),
        ("12+15 ", {12, 15}, ["12", "15"]),
        (" 4 + 7 ", {4, 7}, ["4", "7"]),
        (12, {12}, ["12"]),
        (12.0, {12}, ["12"]),
        ("12.0", {12}, ["12"]),
        (4, {4}, ["4"]),
        ("AU4+AU7", {4, 7}, ["4", "7"]),
        ("AU12R", {12}, ["R12"]),  # MEB reads a side written after the number
        ("12L+4", {4, 12}, ["L12", "4"]),
        ("4，7", {4, 7}, ["4", "7"]),  # the full-width comma MEB corrects in a CAS(ME)³ sheet
        ("１２＋Ｌ４", {4, 12}, ["12", "L4"]),  # typed with a CJK input method
    ],
)
def test_every_documented_form(value, aus, codes):
    parsed = parse_au_string(value)
    assert parsed.ok, parsed.errors
    assert parsed.aus == frozenset(aus)
    assert [str(pos[0]) for pos in parsed.codes] == codes
    assert not parsed.unknown and not parsed.ambiguous


def test_structure_of_codes():
    ((l12a,),) = parse_au_string("L12A").codes
    assert (l12a.au, l12a.side, l12a.modifiers, l12a.intensity, l12a.ref) == (12, "L", (), "A", False)
    ((al12,),) = parse_au_string("A/L12").codes
    assert (al12.side, al12.modifiers, al12.intensity) == ("L", ("A",), None)
    (ref,), _ = parse_au_string("ref(7B)+43").codes
    assert (ref.au, ref.intensity, ref.ref) == (7, "B", True)
    (t18,), _ = parse_au_string("T18+39").codes
    assert t18.modifiers == ("T",) and t18.side is None
    ((ten,),) = parse_au_string("10A/B").codes
    assert ten.intensity == "A/B"


def test_excel_float_is_not_au120():
    assert parse_au_string(12.0).aus == {12}
    assert parse_au_string(1.0).aus == {1}
    bad = parse_au_string(12.5)
    assert not bad.ok and bad.aus == frozenset()


def test_question_mark_is_unknown():
    parsed = parse_au_string("?")
    assert parsed.unknown and parsed.ok and parsed.aus == frozenset()


def test_free_text_is_flagged_not_fatal():
    parsed = parse_au_string("R14+17+soft focus")
    assert parsed.ok
    assert any("soft focus" in f for f in parsed.flags)


def test_full_width_characters_flagged_and_raw_kept():
    parsed = parse_au_string("4，7")
    assert parsed.raw == "4，7" and "full-width characters" in parsed.flags


def test_trailing_space_flagged():
    assert "stray whitespace" in parse_au_string("12+15 ").flags


@pytest.mark.parametrize(
    ("value", "alternatives", "union"),
    [
        ("(R6 or R12)+R15", [{6, 15}, {12, 15}], {6, 12, 15}),
        ("(R6 or R12) + R15", [{6, 15}, {12, 15}], {6, 12, 15}),
        ("L12 or L14", [{12}, {14}], {12, 14}),
        ("R14A or 17A or 24A", [{14}, {17}, {24}], {14, 17, 24}),
    ],
)
def test_or_is_ambiguous_with_alternatives(value, alternatives, union):
    parsed = parse_au_string(value)
    assert parsed.ok and parsed.ambiguous
    assert [set(a) for a in parsed.alternatives] == alternatives
    assert parsed.aus == frozenset(union)
    assert parsed.resolve("drop_sample") is None
    assert parsed.resolve("union") == frozenset(union)
    assert parsed.resolve("first") == frozenset(alternatives[0])


@pytest.mark.parametrize("value", ["L12Z", "120", "abc", "", None, math.nan, True, "4+12x", 0, -3, "L12R"])
def test_bad_values_are_reported_not_raised(value):
    parsed = parse_au_string(value)
    assert not parsed.ok
    assert parsed.errors


# ---------------------------------------------------------------------------------------------- properties

_cells = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789LRATBCDEor()+/ ?ref.,", max_size=30),
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.binary(max_size=20),
)


@settings(max_examples=400, deadline=None)
@given(_cells)
def test_never_raises(value):
    parsed = parse_au_string(value)
    assert all(1 <= a <= 99 for a in parsed.aus)
    assert isinstance(parsed.flags, list) and isinstance(parsed.errors, list)
    if parsed.ok:
        assert parsed.aus or parsed.unknown


_prefixes = st.lists(st.sampled_from(["L", "R", "A", "T", "B"]), max_size=2).map(tuple)
_intensity = st.one_of(st.none(), st.sampled_from(["A", "B", "C", "D", "E", "A/B", "B/C"]))
_codes = st.builds(AUCode, au=st.integers(1, 99), prefix=_prefixes, intensity=_intensity, ref=st.booleans())


@settings(max_examples=300, deadline=None)
@given(st.lists(_codes, min_size=1, max_size=6), st.sampled_from(["+", " + ", "+ "]))
def test_round_trip(codes, joiner):
    text = joiner.join(str(c) for c in codes)
    parsed = parse_au_string(text)
    assert parsed.ok, (text, parsed.errors)
    assert [pos for pos in parsed.codes] == [(c,) for c in codes]
    assert parsed.aus == frozenset(c.au for c in codes)
    assert format_codes([pos[0] for pos in parsed.codes]) == "+".join(str(c) for c in codes)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 99))
def test_excel_numbers_round_trip(number):
    assert parse_au_string(number).aus == {number}
    assert parse_au_string(float(number)).aus == {number}
    assert parse_au_string(f"{number}.0").aus == {number}
