"""The one rule for what text a name may hold (domain.text.printable)."""

from __future__ import annotations

import pytest

from domain.text import printable


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
    ],
)
def test_a_name_that_hides_or_forges_what_it_shows_is_not(name: str) -> None:
    assert not printable(name)
