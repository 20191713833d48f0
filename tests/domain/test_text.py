"""The one rule for what text a name may hold (domain.text.printable)."""

from __future__ import annotations

import pytest

from domain.text import legible, printable


@pytest.mark.parametrize(
    "name",
    [
        "Koperasi Sawit Makmur",
        "Toko Bu Siti\u00a0& Anak",  # a no-break space pasted from a document
        "Kafé Ñusantara",
        "王记 Bakery",
        "한국 식당",  # Korean in precomposed syllables, as keyboards type it
    ],
)
def test_a_name_people_write_is_printable(name: str) -> None:
    assert printable(name)


@pytest.mark.parametrize(
    "name",
    [
        "Toko\nSiti",
        "Toko\x1b[2JSiti",  # a terminal escape
        "Toko\u2028Siti",
        "Toko\u200bSiti",  # zero-width space
        "Toko \u202eitiS",  # bidirectional override
        "\u3164",  # Hangul filler: a letter to Unicode that draws nothing
        "Toko\u3164Siti",
        "\uffa0",  # halfwidth Hangul filler
        "\u115f\u1160",  # Hangul choseong and jungseong fillers
        "\u2800",  # Braille pattern blank: a symbol to Unicode that draws nothing
        "Toko\u2800Siti",
    ],
)
def test_a_name_that_hides_or_forges_what_it_shows_is_not(name: str) -> None:
    assert not printable(name)


@pytest.mark.parametrize(
    ("name", "readable"),
    [
        ("Toko Bu Siti", True),
        ("CV. Maju-Jaya (2)", True),
        ('Warung "Bu Ani" & Anak\'s', True),
        ("7-Eleven", True),
        ("王记", True),
        ("Kafe\u0301", True),
        ("\u0301\u0301", False),  # combining marks on nothing
        ("- . &", False),
        ("", False),
    ],
)
def test_a_name_must_hold_a_letter_or_a_digit(name: str, readable: bool) -> None:
    assert legible(name) is readable
