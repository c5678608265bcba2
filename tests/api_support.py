"""A small five-level tree near lon 120.9, lat 32.0 (wgs84) and an app client for API tests.

Street S (about 570 m x 445 m) holds communities C1 (west, two grids) and C2 (east, one grid);
grid G1 holds two buildings; building B1 holds one 党员中心户 household with a service area.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask.testing import FlaskClient
from shapely.geometry import Point, box, mapping

from gridsvc.access import cli_principal
from gridsvc.io.records import BoundaryRecord
from gridsvc.settings import Settings
from gridsvc.web import create_app

S = "320602001"
C1, C2 = S + "001", S + "002"
G1, G2, G3 = C1 + "01", C1 + "02", C2 + "01"
B1, B2 = G1 + "01", G1 + "02"
H1 = B1 + "01"
ALL_CODES = [S, C1, C2, G1, G2, G3, B1, B2, H1]


def sample_records() -> list[BoundaryRecord]:
    rows = [
        (S, "和平街道", 1, None, box(120.900, 32.000, 120.906, 32.004)),
        (C1, "阳光社区", 2, S, box(120.900, 32.000, 120.903, 32.004)),
        (C2, "幸福社区", 2, S, box(120.903, 32.000, 120.906, 32.004)),
        (G1, "阳光第一网格", 3, C1, box(120.900, 32.000, 120.903, 32.002)),
        (G2, "阳光第二网格", 3, C1, box(120.900, 32.002, 120.903, 32.004)),
        (G3, "幸福网格", 3, C2, box(120.903, 32.000, 120.906, 32.004)),
        (B1, "阳光小区1栋", 4, G1, box(120.9005, 32.0005, 120.9010, 32.0010)),
        (B2, "阳光小区2栋", 4, G1, box(120.9015, 32.0005, 120.9020, 32.0010)),
        (H1, "王芳户", 5, B1, Point(120.9007, 32.0007)),
    ]
    records = [
        BoundaryRecord(row=i, code=code, name=name, level=level, parent_code=parent,
                       geometry=geom, leader="张伟", phone="13800000000")
        for i, (code, name, level, parent, geom) in enumerate(rows, start=1)
    ]
    records[-1].service_area = box(120.9006, 32.0006, 120.9009, 32.0009)
    return records


def write_geojson(records: list[BoundaryRecord], path: Path) -> Path:
    """The records as an interchange-schema GeoJSON file (boundaries/SCHEMA.md)."""
    features = [
        {
            "type": "Feature",
            "geometry": mapping(r.geometry),
            "properties": {"code": r.code, "name": r.name, "level": r.level,
                           "parent_code": r.parent_code, "leader": r.leader, "phone": r.phone,
                           "service_area": r.service_area.wkt if r.service_area else None},
        }
        for r in records
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features},
                               ensure_ascii=False), encoding="utf-8")
    return path


@contextmanager
def app_client(settings: Settings) -> Iterator[FlaskClient]:
    """A test client of a fresh app on the test database, its engine disposed afterwards."""
    app = create_app(settings)
    app.testing = False  # errors go through the problem handlers, as in production
    try:
        yield app.test_client()
    finally:
        app.extensions["gridsvc"].close()


def bearer(settings: Settings, role: str, unit: str | None = None,
           member_id: int | None = None) -> dict[str, str]:
    """An Authorization header with a fresh token of ``role`` (scoped to ``unit``)."""
    from gridsvc.services.accounts import create_token
    from gridsvc.services.context import Services

    services = Services.from_settings(settings)
    try:
        token, _ = create_token(services, f"test {role} {unit or ''}".strip(), role,
                                unit=unit, member_id=member_id)
    finally:
        services.close()
    return {"Authorization": f"Bearer {token}"}


def sign_in(client: FlaskClient, settings: Settings, role: str = "admin",
            unit: str | None = None) -> FlaskClient:
    """Make every request of ``client`` carry a fresh token of ``role`` (a request may still
    override the header); returns the client."""
    client.environ_base["HTTP_AUTHORIZATION"] = bearer(settings, role, unit)["Authorization"]
    return client


def store_sample(url: str, instance_dir: Path) -> None:
    """Migrate the database at ``url`` and store the small tree in it."""
    from gridsvc.services.boundaries import import_records
    from gridsvc.services.context import Services
    from gridsvc.storage.schema import upgrade

    svc = Services.from_settings(Settings(database_url=url, instance_dir=instance_dir))
    try:
        upgrade(svc.db)
        assert import_records(svc, sample_records(), viewer=cli_principal()).stored
    finally:
        svc.close()
