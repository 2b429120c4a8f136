"""Region configuration: one YAML file per region in `regions/config/`.

A region is data, not code: its currency, IANA zone, default locale, source format (which adapter reads its
files), how the creator and product are encoded in the payment reference, and its quarantine thresholds.
Adding a region on an existing format is one new YAML file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from regions.money import exponent

#: What follows the region code in creator and product ids (NG-C0001, NG-P00001): the one definition of their
#: shape, used by the region configs, the sale contract and the data-quality suites.
CREATOR_ID_SHAPE = r"C\d{4}"
PRODUCT_ID_SHAPE = r"P\d{5}"
ANY_REGION_CODE = "[A-Z]{2}"


def creator_pattern(code: str = ANY_REGION_CODE) -> str:
    """A full-match regex for creator ids of one region (or of any region by default)."""
    return rf"^{code}-{CREATOR_ID_SHAPE}$"


def product_pattern(code: str = ANY_REGION_CODE) -> str:
    """A full-match regex for product ids of one region (or of any region by default)."""
    return rf"^{code}-{PRODUCT_ID_SHAPE}$"


@dataclass(frozen=True)
class RegionConfig:
    code: str
    name: str
    currency: str
    zone: str
    locale: str
    language: str
    calling_code: str
    source_format: str
    file_glob: str
    landing: str
    reference_pattern: str
    quarantine_warn: float
    quarantine_error: float

    @property
    def exponent(self) -> int:
        return exponent(self.currency)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    def landing_folder(self, landing_root: Path) -> Path:
        """Where this region's files arrive: `landing` under the landing root, or `landing` itself if absolute."""
        folder = Path(self.landing)
        return folder if folder.is_absolute() else landing_root / folder

    @property
    def creator_pattern(self) -> str:
        return creator_pattern(self.code)

    @property
    def product_pattern(self) -> str:
        return product_pattern(self.code)


def reference_pattern(template: str, code: str) -> str:
    """A region's payment-reference regex: `{creator_id}` and `{product_id}` in the config stand for the named
    groups of the region's id shapes, so the shapes are written once (above), not in every config."""
    return template.replace("{creator_id}", f"(?P<creator_id>{code}-{CREATOR_ID_SHAPE})").replace(
        "{product_id}", f"(?P<product_id>{code}-{PRODUCT_ID_SHAPE})"
    )


def _parse(data: dict) -> RegionConfig:
    pattern = reference_pattern(data["reference"]["pattern"], data["code"])
    compiled = re.compile(pattern)
    missing = {"creator_id", "product_id"} - set(compiled.groupindex)
    if missing:
        raise ValueError(f"region {data['code']}: reference pattern lacks groups {sorted(missing)}")
    exponent(data["currency"])  # fail early on a currency without a known exponent
    ZoneInfo(data["zone"])
    return RegionConfig(
        code=data["code"],
        name=data["name"],
        currency=data["currency"],
        zone=data["zone"],
        locale=data["locale"],
        language=data["language"],
        calling_code=str(data["calling_code"]),
        source_format=data["source_format"],
        file_glob=data.get("file_glob", "*"),
        landing=str(data.get("landing", data["code"].lower())),
        reference_pattern=pattern,
        quarantine_warn=float(data["quarantine_rate"]["warn"]),
        quarantine_error=float(data["quarantine_rate"]["error"]),
    )


@cache
def all_regions() -> dict[str, RegionConfig]:
    configs: dict[str, RegionConfig] = {}
    for entry in sorted(resources.files("regions").joinpath("config").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            region = _parse(yaml.safe_load(entry.read_text()))
            configs[region.code] = region
    return configs


def get_region(code: str) -> RegionConfig:
    regions = all_regions()
    try:
        return regions[code.upper()]
    except KeyError:
        raise KeyError(f"unknown region {code!r}; known: {', '.join(regions)}") from None
