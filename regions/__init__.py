"""Region configuration: one YAML file per region in `regions/config/`.

A region is data, not code: its currency, IANA zone, default locale, source format (which adapter reads its
files), how the creator and product are encoded in the payment reference, and its quarantine thresholds.
Adding a region on an existing format is one new YAML file.

Besides the shipped files, every `*.yaml` in the folders named by `KANDA_REGIONS_DIR` (separated like `PATH`) is
a region too, so an operator onboards a country without touching the installed package. A region file may carry
its rail spec inline under `rail:` (its `source_format` is then `spec:<code>`), which makes one YAML file a whole
new region on a new rail; see `docs/adding-a-region.md`. Errors name the file, line and key.

One region must never stop the others: a region file that does not validate leaves out only the region it
defines. `all_regions()` returns the others, `broken_regions()` says which files did not load and why, and
`get_region` of the region such a file claims raises `RegionUnavailable` naming the file and the problem.
`load_region_file` (one file) and `all_regions(strict=True)` stay strict, for whatever validates region files.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from regions.money import exponent
from regions.yamlfile import SpecError, read_yaml

if TYPE_CHECKING:
    from regions.spec.model import RailSpec

#: Folders (os.pathsep-separated) whose `*.yaml` files are regions in addition to the shipped ones.
REGIONS_DIR_ENV = "KANDA_REGIONS_DIR"
log = logging.getLogger(__name__)
_REQUIRED_KEYS = ("code", "name", "currency", "zone", "locale", "language", "calling_code", "reference")

#: What follows the region code in creator and product ids (NG-C0001, NG-P00001): the one definition of their
#: shape, used by the region configs, the sale contract and the data-quality suites. ASCII digits, never `\d`,
#: which matches any Unicode digit: `EG-P٠٠٠٠٥` would load under a product no registry or later delivery knows.
CREATOR_ID_SHAPE = r"C[0-9]{4}"
PRODUCT_ID_SHAPE = r"P[0-9]{5}"
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
    #: The rail spec carried inline by the region file (`rail:`), if any; shipped spec rails live in their folder.
    rail_spec: RailSpec | None = field(default=None, compare=False, hash=False, repr=False)
    #: The file the region was read from.
    origin: str = field(default="", compare=False, hash=False)

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


def _parse(data: dict, lines: dict[tuple, int] | None = None, origin: str = "<region>") -> RegionConfig:
    lines = lines or {}

    def problem(key: str, message: str) -> SpecError:
        path = tuple(key.split("."))
        line = lines.get(path, lines.get(path[:1], 1))
        return SpecError([f"{origin}:{line}: {key}: {message}"])

    if not isinstance(data, dict):
        raise SpecError([f"{origin}:1: a region file is a mapping of keys (code, name, currency, ...)"])
    for key in _REQUIRED_KEYS:
        if key not in data:
            raise problem(key, "required key missing")
    code = str(data["code"])
    if not re.fullmatch(r"[A-Z]{2}", code):
        raise problem("code", f"{code!r} is not two capital letters (creator ids are <code>-C0001)")
    pattern = (data["reference"] or {}).get("pattern") if isinstance(data["reference"], dict) else None
    if not pattern:
        raise problem("reference", "needs `pattern:` with groups creator_id and product_id")
    try:
        pattern = reference_pattern(pattern, code)
        compiled = re.compile(pattern)
    except re.error as exc:
        raise problem("reference.pattern", f"not a valid regular expression: {exc}") from None
    missing = {"creator_id", "product_id"} - set(compiled.groupindex)
    if missing:
        raise problem("reference.pattern", f"region {code}: reference pattern lacks groups {sorted(missing)}")
    try:
        exponent(data["currency"])  # fail early on a currency without a known exponent
    except ValueError as exc:
        raise problem("currency", str(exc)) from None
    try:
        ZoneInfo(data["zone"])
    except Exception:
        raise problem("zone", f"{data['zone']!r} is not an IANA time zone (e.g. Africa/Kigali)") from None
    rail = data.get("rail")
    spec = None
    if isinstance(rail, dict):
        from regions.spec.model import parse_spec  # the spec models load only for a region that carries its rail

        spec = parse_spec(rail, lines=lines, origin=origin, prefix=("rail",))
        spec = spec.model_copy(update={"name": spec.name or f"spec_{code.lower()}"})
        source_format = data.get("source_format", f"spec:{code.lower()}")
    elif isinstance(rail, str):
        source_format = rail
    elif "source_format" in data:
        source_format = data["source_format"]
    else:
        raise problem("source_format", "name the rail (`source_format:` or `rail: <name>`) or give `rail:` inline")
    rate = data.get("quarantine_rate", {"warn": 0.02, "error": 0.10})
    return RegionConfig(
        code=code,
        name=data["name"],
        currency=data["currency"],
        zone=data["zone"],
        locale=data["locale"],
        language=data["language"],
        calling_code=str(data["calling_code"]),
        source_format=source_format,
        file_glob=data.get("file_glob", "*"),
        landing=str(data.get("landing", code.lower())),
        reference_pattern=pattern,
        quarantine_warn=float(rate["warn"]),
        quarantine_error=float(rate["error"]),
        rail_spec=spec,
        origin=origin,
    )


def load_region_file(path: Path) -> RegionConfig:
    """One region file, validated; `SpecError` lines say `file:line: key: problem`.

    Strict: any problem with the file (unreadable, not UTF-8, a value of the wrong kind) is a `SpecError` naming it.
    This is what validates a single file; the set of regions (`all_regions`) skips a file that fails here.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([f"{path}:0: cannot be read: {exc}"]) from None
    data, lines = read_yaml(text, str(path))
    try:
        return _parse(data, lines, str(path))
    except SpecError:
        raise
    except Exception as exc:  # a value of an unexpected kind (a number where a mapping belongs, ...)
        raise SpecError([f"{path}:1: {type(exc).__name__}: {exc}"]) from None


def extra_region_dirs() -> tuple[Path, ...]:
    value = os.environ.get(REGIONS_DIR_ENV, "")
    return tuple(Path(p) for p in value.split(os.pathsep) if p)


class RegionUnavailable(SpecError):
    """A region whose file did not load (or whose code two files define): the message names the file(s) and why."""


def all_regions(*, strict: bool = False) -> dict[str, RegionConfig]:
    """The shipped regions and those in `KANDA_REGIONS_DIR`, by code (read once per value of the variable).

    One region must never stop the others: a region file that does not validate is left out (with a warning in
    the log) and recorded in `broken_regions()`, and every other region is returned. `strict=True` raises one
    `SpecError` with the problems of every broken file instead (for a command whose job is to validate them).
    """
    loaded = _load(extra_region_dirs(), _served_here())
    if strict and loaded.broken:
        raise SpecError([line for reason in loaded.broken.values() for line in reason.splitlines()])
    return loaded.regions


def broken_regions() -> dict[str, str]:
    """The region files that did not load, by path: why (`file:line: key: problem`, one line per problem).

    A code defined by two files is listed under the later file, naming the first: neither is used.
    """
    return dict(_load(extra_region_dirs(), _served_here()).broken)


def unavailable_regions() -> dict[str, str]:
    """Region codes that a broken (or duplicated) region file claims, by code: why the region cannot be used."""
    return dict(_load(extra_region_dirs(), _served_here()).unavailable)


@dataclass(frozen=True)
class _Loaded:
    regions: dict[str, RegionConfig]
    #: path -> reason, for every file that did not load (or that defines a code already defined).
    broken: dict[str, str]
    #: code -> reason, for every region code a broken or duplicated file claims.
    unavailable: dict[str, str]


#: `code: XX` at the top level of a region file: which region a file that does not validate meant to define.
_CODE_LINE = re.compile(r"""^code:[ \t]*["']?([A-Za-z]{2})["']?[ \t]*(?:#.*)?$""", re.MULTILINE)


def _claimed_code(path: Path) -> str | None:
    """The region code a file states, read from its text (it may not even be YAML); None if it states none."""
    try:
        found = _CODE_LINE.search(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        found = None
    if found:
        return found.group(1).upper()
    return path.stem.upper() if re.fullmatch(r"[A-Za-z]{2}", path.stem) else None


def _served_here() -> frozenset[str]:
    """The region codes `KANDA_REGIONS` names (empty: every region is served here), read as `kanda.settings` reads
    them; the landing-folder rule below compares only the regions one host runs."""
    return frozenset(c.strip().upper() for c in os.environ.get("KANDA_REGIONS", "").split(",") if c.strip())


@cache
def _load(extra: tuple[Path, ...], served: frozenset[str] = frozenset()) -> _Loaded:
    shipped = sorted(resources.files("regions").joinpath("config").iterdir(), key=lambda p: p.name)
    added = [p for folder in extra for p in sorted(folder.glob("*.yaml"))]
    #: code -> the files that define it, in load order, with the region (None for a file that did not load).
    claims: dict[str, list[tuple[Path, RegionConfig | None]]] = {}
    broken: dict[str, str] = {}
    for entry in [*shipped, *added]:
        if not entry.name.endswith(".yaml"):
            continue
        path = Path(str(entry))
        try:
            region = load_region_file(path)
        except SpecError as exc:
            broken[str(path)] = str(exc)
            code = _claimed_code(path)
            if code is not None:
                claims.setdefault(code, []).append((path, None))
            continue
        claims.setdefault(region.code, []).append((path, region))
    configs: dict[str, RegionConfig] = {}
    unavailable: dict[str, str] = {}
    for code, files in claims.items():
        (first, region), *others = files
        if region is not None and not others:
            configs[code] = region
            continue
        reasons = [broken[str(path)] for path, r in files if r is None]
        for path, _ in others:
            if str(path) not in broken:
                broken[str(path)] = f"{path}:1: code: region {code} is already defined in {first}"
                reasons.append(broken[str(path)])
        unavailable[code] = "\n".join(reasons)
    _refuse_shared_landing(configs, {code: files[0][0] for code, files in claims.items()}, broken, unavailable, served)
    for path, reason in broken.items():
        log.warning("region file %s not loaded (the other regions are): %s", path, reason.replace("\n", "; "))
    return _Loaded(configs, broken, unavailable)


def _refuse_shared_landing(
    configs: dict[str, RegionConfig],
    paths: dict[str, Path],
    broken: dict[str, str],
    unavailable: dict[str, str],
    served: frozenset[str],
) -> None:
    """A region whose landing folder is already another region's is left out, as a second file for a code is:
    otherwise it would take the other region's files into its own store, and neither region would say so. Only
    regions of this host are compared (`KANDA_REGIONS`): region hosts may each mount their own `/srv/drop`."""
    owner: dict[str, str] = {}
    for code in list(configs):
        if served and code not in served:
            continue
        folder = os.path.normpath(configs[code].landing.strip())
        first = owner.setdefault(folder, code)
        if first == code:
            continue
        path = paths[code]
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        line = next((n for n, t in enumerate(text.splitlines(), 1) if t.startswith("landing:")), 1)
        reason = (
            f"{path}:{line}: landing: folder {folder!r} is already region {first}'s landing folder ({paths[first]})"
        )
        broken[str(path)] = reason
        unavailable[code] = reason
        del configs[code]


def get_region(code: str) -> RegionConfig:
    """The region by code (any case). A region whose file did not load raises `RegionUnavailable` naming the file and
    why; a code no file defines raises `KeyError` naming the known ones."""
    loaded = _load(extra_region_dirs(), _served_here())
    wanted = code.upper()
    if wanted in loaded.regions:
        return loaded.regions[wanted]
    if wanted in loaded.unavailable:
        reason = loaded.unavailable[wanted]
        raise RegionUnavailable([f"region {wanted} cannot be used: {line}" for line in reason.splitlines()])
    message = f"unknown region {code!r}; known: {', '.join(loaded.regions)}"
    if loaded.broken:
        message += f"; region file(s) that did not load: {', '.join(loaded.broken)}"
    raise KeyError(message) from None
