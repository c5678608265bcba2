from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import MultiPolygon, box
from sqlalchemy import select

from gridsvc.storage.models import Unit


def test_unit_round_trips_geometry_and_version(db):
    shape = MultiPolygon([box(120.0, 32.0, 120.1, 32.1)])
    with db.session() as s:
        unit = Unit(code="320602001", name="和平街道", level=1, path="/", properties={},
                    geom=from_shape(shape, srid=4326))
        s.add(unit)
    with db.session() as s:
        stored = s.scalars(select(Unit)).one()
        assert stored.version == 1
        assert to_shape(stored.geom).equals(shape)
        stored.name = "和平街道(新)"
    with db.session() as s:
        assert s.scalars(select(Unit)).one().version == 2


def test_timestamps_read_back_in_utc(db):
    with db.session() as s:
        s.add(Unit(code="1", name="a", level=1, path="/1/", properties={},
                   geom=from_shape(box(120.0, 32.0, 120.1, 32.1), srid=4326)))
    with db.session() as s:
        unit = s.scalars(select(Unit)).one()
        assert unit.updated_at.utcoffset().total_seconds() == 0
        assert unit.updated_at.isoformat().endswith("+00:00")
