"""All configuration, read from ``GRIDSVC_*`` environment variables in one place.

Nothing else in the package reads the environment. ``Settings.from_env()`` is called by the
app factory and the CLI (once per command, before it does anything); tests build ``Settings``
directly.

Each field ``x`` is read from ``GRIDSVC_X`` (e.g. ``database_url`` from
``GRIDSVC_DATABASE_URL``); the README's configuration table lists them with their meaning.
The database defaults to a SpatiaLite file ``<instance_dir>/gridsvc.sqlite``; PostGIS is any
``postgresql://`` URL.

Checked at start: ``from_env`` converts every variable to its field's type (int, float,
bool: ``1/0``, ``true/false``, ``yes/no``, ``on/off``) and checks the field's rule, given
where the field is declared: ``choice(...)`` an enumerated value (``optinal`` is refused,
never read as the default), ``number(min=, max=)`` a range (floats also finite), ``url(...)``
the URL schemes, ``rate()`` a rate limit. Every wrong variable is reported at once in a
``SettingsError`` that names it, its value and what is allowed; the CLI prints it and exits
with status 2, no traceback. An empty variable means the default. Settings built directly
(tests) are not checked, so a test can build a wrong one for the code that refuses it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

BASEMAPS = ("osm", "tianditu", "xyz", "none")
TILE_COORDSYS = ("wgs84", "cgcs2000", "gcj02")
OGC_PRECONDITIONS = ("required", "optional")
RATE_OFF = ("", "0", "off", "none")
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class SettingsError(ValueError):
    """One or more GRIDSVC_* variables are wrong; the message names each."""


# A rule takes the converted value and returns what is wrong with it (None: fine).
Rule = Callable[[Any], "str | None"]


def _setting(default: Any, rule: Rule, clean: Callable[[Any], Any] | None = None) -> Any:
    return field(default=default, metadata={"rule": rule, "clean": clean})


def choice(default: str, allowed: tuple[str, ...]) -> Any:
    """An enumerated setting: one of ``allowed`` (case and surrounding blanks ignored)."""
    def rule(value: str) -> str | None:
        if value.strip().lower() in allowed:
            return None
        return f"is not one of: {', '.join(allowed)}"
    return _setting(default, rule, clean=lambda value: value.strip().lower())


def number(default: float, *, min: float | None = None, max: float | None = None) -> Any:
    """A numeric setting within ``[min, max]`` (a float must also be finite)."""
    def rule(value: float) -> str | None:
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        if (min is not None and value < min) or (max is not None and value > max):
            low = "" if min is None else f"at least {min:g}"
            high = "" if max is None else f"at most {max:g}"
            return f"must be {' and '.join(x for x in (low, high) if x)}"
        return None
    return _setting(default, rule)


def url(default: str, schemes: tuple[str, ...], *, paths: bool = False) -> Any:
    """A URL setting whose scheme is one of ``schemes`` ("" allowed: the default or unset);
    ``paths``: an absolute path on this host (``/tiles/...``) is also accepted."""
    def rule(value: str) -> str | None:
        scheme, sep, _rest = value.partition("://")
        if not value or (paths and value.startswith("/") and not value.startswith("//")):
            return None
        if sep and scheme.lower().split("+")[0] in schemes and _rest:
            return None
        also = " (or an absolute path such as /tiles/...)" if paths else ""
        return f"is not a URL of scheme {', '.join(s + '://' for s in schemes)}{also}"
    return _setting(default, rule)


def rate(default: str) -> Any:
    """A rate limit in the syntax of the ``limits`` package; ``0``/``off``/``none`` is off."""
    return _setting(default, rate_problem)


def rate_problem(value: str) -> str | None:
    """What is wrong with a rate limit such as ``120/minute`` (None: fine, or off)."""
    if value.strip().lower() in RATE_OFF:
        return None
    from limits import parse_many

    try:
        parse_many(value.strip())
    except ValueError as exc:
        return f"is not a rate limit such as '120/minute' or '10/second;1000/hour' ({exc})"
    return None


@dataclass(frozen=True)
class Settings:
    """Runtime settings. Build with ``Settings.from_env()`` or directly in tests."""

    database_url: str = url("", ("sqlite", "postgresql"))
    instance_dir: Path = field(default_factory=lambda: Path("instance"))
    levels: str = ""
    contain_tolerance_m: float = number(1.0, min=0)
    overlap_tolerance_m2: float = number(1.0, min=0)
    gap_min_m2: float = number(1.0, min=0)
    nearest_radius_m: float = number(200.0, min=0)
    household_radius_m: float = number(300.0, min=0)
    batch_limit: int = number(10_000, min=1)
    index_check_seconds: float = number(1.0, min=0)
    max_upload_mb: int = number(200, min=1)
    max_json_mb: int = number(8, min=1)  # largest request body that is not a multipart upload
    zip_max_mb: int = number(1024, min=1)  # most a zip upload may unpack to, all entries together
    zip_max_ratio: int = number(200, min=1)  # most an entry past 1 MB may expand (unpacked/packed)
    zip_max_entries: int = number(1000, min=1)  # most entries (files and folders) in a zip upload
    # Public lookups per client address, per process (per gunicorn worker), in the syntax of
    # the `limits` package ("120/minute", "10/second;1000/hour"); "0" or "" turns it off.
    lookup_rate_limit: str = rate("120/minute")
    # Public self-registrations per client address, per process (same syntax)
    registration_rate_limit: str = rate("10/minute;100/day")
    # Staff member searches, updates and roster uploads per token, per process, counted
    # together (they compare typed names and phones with the stored members)
    members_rate_limit: str = rate("120/minute")
    # reverse proxies in front whose X-Forwarded-For/-Proto are trusted
    proxy_hops: int = number(0, min=0, max=10)
    audit_retention_days: int = number(180, min=1)  # audit entries older than this are purged
    token_cache_seconds: float = number(5.0, min=0)  # how long a worker trusts a verified token
    # How long a statement waits for a lock (SQLite's write lock, a PostgreSQL row lock) before
    # the request answers 503: bounds the time a worker thread is held.
    db_lock_timeout_seconds: float = number(5.0, min=0.1, max=300)
    # OGC API writes without If-Match or properties.version: "required" answers 428;
    # "optional" writes against the stored version (last writer wins; for QGIS, see README)
    ogc_precondition: str = choice("required", OGC_PRECONDITIONS)
    # HTTP Basic sign-in on /ogc (the token as password, for QGIS 3.22) over plain HTTP: refused
    # unless this is on, or the request both comes from and is addressed to this host (loopback)
    allow_basic_http: bool = False
    basemap: str = choice("osm", BASEMAPS)  # see gridsvc.maps.basemap
    tianditu_key: str = ""  # the Tianditu "tk" key, needed when basemap is tianditu
    # XYZ tile URL template for basemap xyz, e.g. an intranet tile server
    basemap_url: str = url("", ("http", "https"), paths=True)
    basemap_coordsys: str = choice("wgs84", TILE_COORDSYS)  # the xyz tiles' system
    basemap_attribution: str = ""  # attribution shown for basemap xyz
    basemap_subdomains: str = ""  # letters or digits substituted for {s} in basemap_url
    assets_dir: str = ""  # where `make install` put the browser assets; "" = <checkout>/vendor
    upload_dir: str = ""  # where uploads wait while they are read; "" = <instance_dir>/uploads

    def __post_init__(self) -> None:
        if not self.database_url:
            db_file = Path(self.instance_dir).resolve() / "gridsvc.sqlite"
            object.__setattr__(self, "database_url", f"sqlite:///{db_file}")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Read every ``GRIDSVC_<FIELD>`` variable, converting to the field's type and checking
        its rule; ``SettingsError`` names every variable that is wrong."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        wrong: list[str] = []
        for f in fields(cls):
            name = f"GRIDSVC_{f.name.upper()}"
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            try:
                value = _convert(f.type if isinstance(f.type, str) else f.type.__name__, raw)
            except ValueError as exc:
                wrong.append(f"{name}={raw!r} {exc}")
                continue
            rule, clean = f.metadata.get("rule"), f.metadata.get("clean")
            problem = rule(value) if rule else None
            if problem:
                wrong.append(f"{name}={raw!r} {problem}")
            values[f.name] = clean(value) if clean else value
        if wrong:
            raise SettingsError("; ".join(wrong))
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]  # field types are checked by _convert

    @property
    def uploads(self) -> Path:
        """The folder uploads are written to (``upload_dir`` or ``<instance_dir>/uploads``)."""
        return Path(self.upload_dir) if self.upload_dir else Path(self.instance_dir) / "uploads"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _convert(kind: str, raw: str) -> object:
    """``raw`` as a value of the field type ``kind`` (``ValueError`` says what was expected)."""
    text = raw.strip()
    try:
        if kind == "float":
            return float(text)
        if kind == "int":
            return int(text)
    except ValueError:
        what = "a number" if kind == "float" else "a whole number"
        raise ValueError(f"is not a valid {kind} ({what})") from None
    if kind == "bool":
        if text.lower() in TRUE + FALSE:
            return text.lower() in TRUE
        raise ValueError(f"is not a valid bool: one of {', '.join(TRUE + FALSE)}")
    if kind == "Path":
        return Path(raw)
    return raw
