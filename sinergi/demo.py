"""The demo data set: reference data, the hand-written demo records and a synthetic population.

The population is deterministic for a given seed, so screenshots, tests and benchmarks agree.
Demo identifiers stay in recognisable ranges (NIB 999…, legal entity AHU-999…, NIK kecamatan
99, see docs/domain.md, Identifiers), but a range proves nothing: OSS draws NIBs at random, so a
real business may hold a 999… NIB. The loader lists every record it creates in the owner's
tables `demo_msmes` and `demo_cooperatives` (migration 0046), and a reload deletes exactly those,
so the command is safe to repeat and never touches records anyone else created.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import (
    COOPERATIVES,
    DEMO_COOPERATIVES,
    DEMO_MSMES,
    ELIGIBILITY_DECISIONS,
    GUARANTEE_STATUS_CHANGES,
    GUARANTEES,
    MSME_OWNERS,
    MSME_SCALE_HISTORY,
    MSMES,
    PARTICIPATIONS,
)
from db.seed import load_reference, read_csv
from domain.identifiers import kbli_section, parse_kbli_sections
from domain.participations import ParticipationStatus, participation_status
from domain.scale import RULE_VERSION, classify

SEED_DATA = Path(__file__).parent / "seed_data"
Progress = Callable[[int, int], None]

_PROVINCE_WEIGHTS = {"61": 0.4, "62": 0.25, "64": 0.35}
_COOPERATIVE_TYPES = (("produsen", 44), ("konsumen", 43), ("jasa", 6), ("pemasaran", 2))
_SIMPAN_PINJAM_WEIGHT = 5
_BUSINESS_WORDS = (
    "Toko",
    "Warung Makan",
    "Keripik",
    "Kedai Kopi",
    "Jasa Boga",
    "Kerajinan Rotan",
    "Tenun",
    "Bengkel",
    "Kue Basah",
    "Sembako",
    "Madu Kelulut",
    "Ikan Asin",
)
_QUALITIES = ("Berkah", "Sejahtera", "Mandiri", "Lestari", "Makmur", "Barokah", "Jaya", "Abadi")
_GIVEN_NAMES = ("Sri", "Budi", "Dewi", "Agus", "Rudi", "Siti", "Yanti", "Eko", "Rina", "Fajar")
_FAMILY_NAMES = ("Rahayu", "Santoso", "Lestari", "Pratama", "Hidayat", "Saputra", "Wati")
_TYPE_WORDS = {
    "produsen": "Koperasi Produsen",
    "konsumen": "Koperasi Konsumen",
    "jasa": "Koperasi Jasa",
    "pemasaran": "Koperasi Pemasaran",
    "simpan_pinjam": "KSP",
}


@dataclass(frozen=True)
class _Geography:
    regencies: dict[str, list[str]]
    districts: dict[str, list[str]]

    @classmethod
    def of_kalimantan(cls, directory: Path) -> _Geography:
        regencies: dict[str, list[str]] = {code: [] for code in _PROVINCE_WEIGHTS}
        for row in read_csv(directory / "regions.csv"):
            if row["parent_code"] in regencies:
                regencies[row["parent_code"]].append(row["code"])
        districts: dict[str, list[str]] = {}
        for row in read_csv(directory / "districts.csv"):
            districts.setdefault(row["parent_code"], []).append(row["code"])
        return cls(regencies, districts)

    def place(self, rng: random.Random) -> tuple[str, str, str | None]:
        province = rng.choices(list(_PROVINCE_WEIGHTS), weights=list(_PROVINCE_WEIGHTS.values()))
        regency = rng.choice(self.regencies[province[0]])
        district = rng.choice(self.districts[regency]) if regency in self.districts else None
        return province[0], regency, district


def _sales_for(rng: random.Random) -> int:
    """Annual sales with the MSME mix of Kalimantan: overwhelmingly micro (Kalimantan Timur's
    344,581 MSMEs of 2022 were 97% micro, 2.7% small, 0.2% medium: Antara Kaltim,
    https://kaltim.antaranews.com/amp/berita/175125/jumlah-umkm-kaltim-sudah-capai-344581)."""
    draw = rng.random()
    if draw < 0.955:
        return rng.randrange(20_000_000, 2_000_000_000, 1_000_000)
    if draw < 0.99:
        return rng.randrange(2_001_000_000, 15_000_000_000, 1_000_000)
    return rng.randrange(15_001_000_000, 50_000_000_000, 1_000_000)


def _nik(rng: random.Random, regency: str, sequence: int) -> tuple[str, str, date]:
    sex = rng.choice("FM")
    born = date(1960, 1, 1) + timedelta(days=rng.randrange(0, 40 * 365))
    day = born.day + (40 if sex == "F" else 0)
    digits = f"{regency.replace('.', '')}99{day:02d}{born.month:02d}{born.year % 100:02d}"
    return f"{digits}{sequence % 9_999 + 1:04d}", sex, born  # sequences start at 0001


class _Population:
    """Rows of the synthetic population, drawn from one seeded generator in a fixed order."""

    def __init__(self, seed: int, geography: _Geography, directory: Path) -> None:
        self.rng = random.Random(seed)
        self.geography = geography
        self.sections = parse_kbli_sections(read_csv(directory / "kbli-sections.csv"))
        self.kbli_codes = [row["code"] for row in read_csv(directory / "kbli-codes.csv")]

    def cooperatives(self, count: int) -> Iterator[dict[str, Any]]:
        rng = self.rng
        types = [name for name, _ in _COOPERATIVE_TYPES] + ["simpan_pinjam"]
        weights = [weight for _, weight in _COOPERATIVE_TYPES] + [_SIMPAN_PINJAM_WEIGHT]
        for index in range(count):
            province, regency, district = self.geography.place(rng)
            kind = rng.choices(types, weights=weights)[0]
            founded = rng.randrange(1995, 2024)
            active = rng.random() < 0.68
            last_book_year = rng.choice((2023, 2024)) if active else rng.randrange(2012, 2022)
            yield {
                "legal_entity_no": f"AHU-{9_991_000 + index}.AH.01.26.TAHUN {founded}",
                "ods_no": f"CONTOH-{regency.replace('.', '')}-{index + 10:06d}",
                "name": f"{_TYPE_WORDS[kind]} Contoh {rng.choice(_QUALITIES)} {index + 1}",
                "tier": "primary",
                "type": kind,
                "province_code": province,
                "regency_code": regency,
                "district_code": district,
                "members_male": rng.randrange(10, 600),
                "members_female": rng.randrange(10, 600),
                "business_volume": rng.randrange(50_000_000, 15_000_000_000, 1_000_000),
                "assets": rng.randrange(50_000_000, 20_000_000_000, 1_000_000),
                "book_year": last_book_year,
                "last_rat_date": date(last_book_year + 1, rng.randrange(1, 7), 15),
                "last_rat_book_year": last_book_year,
                "status": "active" if active else "inactive",
            }

    def msme(self, index: int, cooperative_ids: list[int]) -> dict[str, Any]:
        rng = self.rng
        province, regency, district = self.geography.place(rng)
        sales = _sales_for(rng)
        graduated = sales > 2_000_000_000 and sales <= 3_000_000_000 and rng.random() < 0.6
        sales_before = rng.randrange(1_500_000_000, 2_000_000_000) if graduated else sales * 9 // 10
        capital = min(sales // 3, 9_000_000_000)
        kbli = rng.choice(self.kbli_codes)
        nik, sex, born = _nik(rng, regency, index)
        name = f"{rng.choice(_BUSINESS_WORDS)} Contoh {rng.choice(_QUALITIES)} {index + 1}"
        return {
            "msme": {
                "nib": f"{9_991_000_000_000 + index}",
                "name": name,
                "kbli_code": kbli,
                "kbli_section": kbli_section(kbli, self.sections),
                "scale": str(classify(capital=capital, annual_sales=sales)),
                "province_code": province,
                "regency_code": regency,
                "district_code": district,
                "established_on": date(2005, 1, 1) + timedelta(days=rng.randrange(0, 7300)),
                "capital": capital,
                "annual_turnover": sales,
                "turnover_year": 2025,
                "employees": rng.randrange(1, 5) if sales < 2_000_000_000 else rng.randrange(5, 80),
                "cooperative_id": rng.choice(cooperative_ids) if rng.random() < 0.2 else None,
                "is_active": rng.random() < 0.93,
            },
            "owner": {
                "nik": nik,
                "full_name": f"{rng.choice(_GIVEN_NAMES)} Contoh {rng.choice(_FAMILY_NAMES)}",
                "sex": sex,
                "birth_date": born,
                "phone": f"+62812{rng.randrange(10**7, 10**8)}",
                "address": f"Jl. Contoh No. {rng.randrange(1, 200)}",
            },
            "history": [
                (date(2024, 1, 1), sales_before, capital),
                (date(2025, 1, 1), sales, capital),
            ],
        }


async def clear(connection: AsyncConnection) -> None:
    """Delete the demo businesses, those the loader listed, with what was recorded about them
    since: the eligibility decisions and guarantees of the README's examples, which no cascade
    removes (a real business's decisions must never go with a delete), then the businesses
    themselves (and, by cascade, their owners, history, participations and listing)."""
    demo_msmes = select(DEMO_MSMES.c.msme_id)
    demo_cooperatives = select(DEMO_COOPERATIVES.c.cooperative_id)

    def about_demo(table: Any) -> Any:
        return or_(table.c.msme_id.in_(demo_msmes), table.c.cooperative_id.in_(demo_cooperatives))

    await connection.execute(
        delete(GUARANTEE_STATUS_CHANGES).where(
            GUARANTEE_STATUS_CHANGES.c.guarantee_id.in_(
                select(GUARANTEES.c.id).where(about_demo(GUARANTEES))
            )
        )
    )
    await connection.execute(delete(GUARANTEES).where(about_demo(GUARANTEES)))
    await connection.execute(delete(ELIGIBILITY_DECISIONS).where(about_demo(ELIGIBILITY_DECISIONS)))
    await connection.execute(delete(MSMES).where(MSMES.c.id.in_(demo_msmes)))
    await connection.execute(delete(COOPERATIVES).where(COOPERATIVES.c.id.in_(demo_cooperatives)))


async def load(
    connection: AsyncConnection,
    *,
    msmes: int,
    seed: int,
    directory: Path = SEED_DATA,
    progress: Progress | None = None,
) -> None:
    """Replace the demo data with a fresh, deterministic population of `msmes` businesses."""
    await load_reference(connection, directory)
    await clear(connection)
    await _load_named_records(connection, directory)
    population = _Population(seed, _Geography.of_kalimantan(directory), directory)
    cooperative_ids = await _insert_listed(
        connection,
        COOPERATIVES,
        DEMO_COOPERATIVES,
        list(population.cooperatives(max(msmes // 10, 10))),
    )
    batch_size = 1000
    for start in range(0, msmes, batch_size):
        batch = [
            population.msme(i, cooperative_ids)
            for i in range(start, min(start + batch_size, msmes))
        ]
        await _insert_msmes(connection, batch)
        if progress is not None:
            progress(min(start + batch_size, msmes), msmes)
    await _load_participations(connection, directory)


async def _insert_listed(
    connection: AsyncConnection, table: Any, listing: Any, rows: list[dict[str, Any]]
) -> list[int]:
    """Insert `rows` into `table` and list their ids in `listing` (`DEMO_MSMES` or
    `DEMO_COOPERATIVES`), in the load's transaction: what `clear` will delete."""
    result = await connection.execute(table.insert().returning(table.c.id), rows)
    ids = [row[0] for row in result]
    (column,) = listing.primary_key.columns
    await connection.execute(listing.insert(), [{column.name: id_} for id_ in ids])
    return ids


async def _insert_msmes(connection: AsyncConnection, batch: list[dict[str, Any]]) -> None:
    ids = await _insert_listed(connection, MSMES, DEMO_MSMES, [item["msme"] for item in batch])
    await connection.execute(
        MSME_OWNERS.insert(),
        [{**item["owner"], "msme_id": msme_id} for item, msme_id in zip(batch, ids, strict=True)],
    )
    history = []
    for item, msme_id in zip(batch, ids, strict=True):
        previous = None
        for effective_from, sales, capital in item["history"]:
            scale = str(classify(capital=capital, annual_sales=sales))
            if scale != previous:
                history.append(
                    {
                        "msme_id": msme_id,
                        "scale": scale,
                        "effective_from": effective_from,
                        "annual_sales": sales,
                        "capital": capital,
                        # The demo's figures are each year's sales, in force from its 1 January.
                        "turnover_year": effective_from.year,
                        "rule_version": RULE_VERSION,
                    }
                )
            previous = scale
    await connection.execute(MSME_SCALE_HISTORY.insert(), history)


async def _load_named_records(connection: AsyncConnection, directory: Path) -> None:
    """The hand-written demo businesses that the docs and the eligibility scenarios refer to."""
    sections = parse_kbli_sections(read_csv(directory / "kbli-sections.csv"))
    cooperatives = [
        {
            "legal_entity_no": row["legal_entity_no"],
            "ods_no": row["ods_no"],
            "name": row["name"],
            "tier": row["tier"],
            "type": row["type"],
            "province_code": row["region"][:2],
            "regency_code": row["region"],
            "district_code": row["district"] or None,
            "kbli_code": row["kbli"],
            "members_male": int(row["members_male"]),
            "members_female": int(row["members_female"]),
            "business_volume": int(row["business_volume_2024"]),
            "assets": int(row["assets_2024"]),
            "surplus": int(row["surplus_2024"]),
            "book_year": 2024,
            "last_rat_date": date.fromisoformat(row["last_rat_date"]),
            "last_rat_book_year": int(row["last_rat_book_year"]),
            "status": row["status"],
        }
        for row in read_csv(directory / "demo-cooperatives.csv")
    ]
    await _insert_listed(connection, COOPERATIVES, DEMO_COOPERATIVES, cooperatives)
    batch = []
    for row in read_csv(directory / "demo-msmes.csv"):
        capital = int(row["capital_2025"])
        sales_2025 = int(row["turnover_2025"])
        history = [(date(2025, 1, 1), sales_2025, capital)]
        if row["turnover_2024"]:
            history.insert(0, (date(2024, 1, 1), int(row["turnover_2024"]), capital))
        batch.append(
            {
                "msme": {
                    "nib": row["nib"],
                    "name": row["name"],
                    "kbli_code": row["kbli"],
                    "kbli_section": kbli_section(row["kbli"], sections),
                    "scale": str(classify(capital=capital, annual_sales=sales_2025)),
                    "province_code": row["region"][:2],
                    "regency_code": row["region"],
                    "district_code": row["district"] or None,
                    "established_on": date.fromisoformat(row["established"]),
                    "capital": capital,
                    "annual_turnover": sales_2025,
                    "turnover_year": 2025,
                    "employees": int(row["employees"]),
                    "cooperative_id": None,
                    "is_active": True,
                },
                "owner": {
                    "nik": row["owner_nik"],
                    "full_name": row["owner_name"],
                    "sex": row["owner_sex"],
                    "birth_date": None,
                    "phone": row["owner_phone"],
                    "address": None,
                },
                "history": history,
            }
        )
    await _insert_msmes(connection, batch)


# Of the listed records only (the synthetic ones are 9991…): a real business may hold such a NIB.
_SYNTHETIC_PARTICIPATIONS = text("""
INSERT INTO participations (programme_id, msme_id, cooperative_id, role, status, detail)
SELECT 'PR-MBG', id, NULL::bigint, 'supplier', :active, 'synthetic MBG supplier'
  FROM msmes JOIN demo_msmes ON msme_id = id
 WHERE nib LIKE '9991%' AND kbli_section IN ('A', 'C', 'G', 'I')
   AND substring(nib, 5)::bigint % 29 = 0
UNION ALL
SELECT 'PR-SERBU-NIB', id, NULL::bigint, 'recipient', :completed, 'synthetic NIB + halal'
  FROM msmes JOIN demo_msmes ON msme_id = id
 WHERE nib LIKE '9991%' AND province_code = '62'
   AND substring(nib, 5)::bigint % 17 = 0
UNION ALL
SELECT 'PR-MMM', NULL::bigint, id, 'producer', :active, 'synthetic red palm oil producer'
  FROM cooperatives JOIN demo_cooperatives ON cooperative_id = id
 WHERE legal_entity_no LIKE 'AHU-9991%' AND type = 'produsen'
   AND status = 'active' AND province_code IN ('61', '62')
   AND substring(legal_entity_no, 9, 3)::int % 7 = 0
""")


async def _load_participations(connection: AsyncConnection, directory: Path) -> None:
    rows = []
    for row in read_csv(directory / "demo-participations.csv"):
        if row["subject_kind"] == "msme":
            subject = select(MSMES.c.id).where(MSMES.c.nib == row["subject_id"])
        else:
            subject = select(COOPERATIVES.c.id).where(
                COOPERATIVES.c.legal_entity_no == row["subject_id"]
            )
        subject_id = (await connection.execute(subject)).scalar_one()
        rows.append(
            {
                "programme_id": row["programme"],
                "msme_id": subject_id if row["subject_kind"] == "msme" else None,
                "cooperative_id": subject_id if row["subject_kind"] == "cooperative" else None,
                "role": row["role"],
                "status": participation_status(
                    row["status"], field="demo-participations.csv: status"
                ),
                "detail": row["detail"],
            }
        )
    await connection.execute(PARTICIPATIONS.insert(), rows)
    await connection.execute(
        _SYNTHETIC_PARTICIPATIONS,
        {"active": ParticipationStatus.ACTIVE, "completed": ParticipationStatus.COMPLETED},
    )
