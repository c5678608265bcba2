"""For the OGC API - Features and unit-delete tests: the small tree of api_support with room
for a new grid, and members placed in its buildings.

Grid G3 covers only the east two thirds of community C2 here, so the strip
120.903-120.904 (``FREE_IN_C2``) is in C2 and in no grid: a valid place for a new grid.
"""

from __future__ import annotations

from api_support import B1, B2, G3, H1, sample_records
from shapely.geometry import Point, box, mapping
from sqlalchemy import select

from gridsvc.io.records import BoundaryRecord
from gridsvc.services.context import Services
from gridsvc.storage.models import Member, Unit

G3_BOX = box(120.904, 32.000, 120.906, 32.004)
FREE_IN_C2 = box(120.9031, 32.0005, 120.9039, 32.0035)
OUTSIDE_C2 = box(120.9070, 32.0005, 120.9080, 32.0015)  # east of the street
# (name, phone, lon, lat) in wgs84: two homes in B1, one in B2
HOMES = [("王芳", "13800000001", 120.9007, 32.0008), ("李强", "13800000002", 120.9009, 32.0006),
         ("赵敏", "13800000003", 120.9017, 32.0007)]


def ogc_records() -> list[BoundaryRecord]:
    records = sample_records()
    for r in records:
        if r.code == G3:
            r.geometry = G3_BOX
    return records


def add_members(svc: Services) -> dict[str, int]:
    """The HOMES as assigned members of their building and of H1 (the household rule's
    pick: the only one in their grid); returns phone -> member id."""
    buildings = {B1: box(120.9005, 32.0005, 120.9010, 32.0010),
                 B2: box(120.9015, 32.0005, 120.9020, 32.0010)}
    with svc.db.session() as s:
        ids = {code: id_ for code, id_ in s.execute(select(Unit.code, Unit.id))}
        out = {}
        for name, phone, lon, lat in HOMES:
            [code] = [c for c, g in buildings.items() if g.contains(Point(lon, lat))]
            member = Member(name=name, phone=phone, lon=lon, lat=lat, skills=[], intentions=[],
                            roles=[], building_id=ids[code],
                            household_id=ids[H1], status="assigned",
                            match={"method": "point", "fallback": False})
            s.add(member)
            s.flush()
            out[phone] = member.id
    return out


def feature(code: str, geometry, parent: str | None, name: str = "新网格", **props) -> dict:
    return {"type": "Feature", "id": code, "geometry": mapping(geometry),
            "properties": {"code": code, "name": name, "parent_code": parent, **props}}
