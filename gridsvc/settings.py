"""All configuration, read from ``GRIDSVC_*`` environment variables in one place.

Nothing else in the package reads the environment. ``Settings.from_env()`` is called by the
app factory and the CLI; tests build ``Settings`` directly.

Each field ``x`` is read from ``GRIDSVC_X`` (e.g. ``database_url`` from
``GRIDSVC_DATABASE_URL``); the README's configuration table lists them with their meaning.
The database defaults to a SpatiaLite file ``<instance_dir>/gridsvc.sqlite``; PostGIS is any
``postgresql://`` URL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Runtime settings. Build with ``Settings.from_env()`` or directly in tests."""

    database_url: str = ""
    instance_dir: Path = field(default_factory=lambda: Path("instance"))
    levels: str = ""
    contain_tolerance_m: float = 1.0
    overlap_tolerance_m2: float = 1.0
    gap_min_m2: float = 1.0
    nearest_radius_m: float = 200.0
    household_radius_m: float = 300.0
    batch_limit: int = 10_000
    index_check_seconds: float = 1.0
    max_upload_mb: int = 200
    max_json_mb: int = 8  # largest request body that is not a multipart upload (JSON)
    zip_max_mb: int = 1024  # most a zip upload may unpack to, all entries together
    zip_max_ratio: int = 200  # most an entry past 1 MB may expand (unpacked / packed size)
    zip_max_entries: int = 1000  # most entries (files and folders) in a zip upload
    # Public lookups per client address, per process (per gunicorn worker), in the syntax of
    # the `limits` package ("120/minute", "10/second;1000/hour"); "0" or "" turns it off.
    lookup_rate_limit: str = "120/minute"
    proxy_hops: int = 0  # reverse proxies in front whose X-Forwarded-For/-Proto are trusted
    audit_retention_days: int = 180  # audit entries older than this are purged
    token_cache_seconds: float = 5.0  # how long a worker trusts a verified token
    # OGC API writes without If-Match or properties.version: "required" answers 428;
    # "optional" writes against the stored version (last writer wins; for QGIS, see README)
    ogc_precondition: str = "required"
    basemap: str = "osm"  # osm | tianditu | xyz | none (see gridsvc.maps.basemap)
    tianditu_key: str = ""  # the Tianditu "tk" key, needed when basemap is tianditu
    basemap_url: str = ""  # XYZ tile URL template for basemap xyz, e.g. an intranet tile server
    basemap_coordsys: str = "wgs84"  # the xyz tiles' system: wgs84, cgcs2000 or gcj02
    basemap_attribution: str = ""  # attribution shown for basemap xyz
    basemap_subdomains: str = ""  # letters or digits substituted for {s} in basemap_url
    assets_dir: str = ""  # where `make install` put the browser assets; "" = <checkout>/vendor

    def __post_init__(self) -> None:
        if not self.database_url:
            db_file = Path(self.instance_dir).resolve() / "gridsvc.sqlite"
            object.__setattr__(self, "database_url", f"sqlite:///{db_file}")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Read every ``GRIDSVC_<FIELD>`` variable, converting to the field's type."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"GRIDSVC_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            kind = f.type if isinstance(f.type, str) else f.type.__name__
            try:
                if kind == "float":
                    values[f.name] = float(raw)
                elif kind == "int":
                    values[f.name] = int(raw)
                elif kind == "Path":
                    values[f.name] = Path(raw)
                else:
                    values[f.name] = raw
            except ValueError as exc:
                raise ValueError(f"GRIDSVC_{f.name.upper()}={raw!r} is not a valid {kind}") from exc
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
