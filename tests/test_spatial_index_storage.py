"""The index against the databases' own ``ST_Covers`` (PostGIS and SpatiaLite) on high-vertex
organic outlines: stored as units, asked point by point."""

from __future__ import annotations

import numpy as np
import shapely
from geoalchemy2.shape import from_shape
from organic_support import check_against_covers, organic_town, probe_points
from shapely.geometry import MultiPolygon, Point
from sqlalchemy import func, select

from gridsvc.spatial.index import PolygonIndex
from gridsvc.storage.models import Unit

PER_KIND = 150  # points of each kind asked of the database


def test_index_agrees_with_st_covers_on_organic_outlines(db):
    geoms, ids = organic_town(seed=3)
    with db.session() as s:
        for geom, code in zip(geoms, ids.tolist(), strict=True):
            shape = geom if geom.geom_type == "MultiPolygon" else MultiPolygon([geom])
            s.add(Unit(code=str(code), name=f"网格{code}", level=3, path=f"/{code}/",
                       properties={}, geom=from_shape(shape, srid=4326)))
    index = PolygonIndex.build(geoms, ids)
    rng = np.random.default_rng(4)
    points = probe_points(geoms, seed=5)
    x, y = [], []
    for kind in ("random", "vertices", "near vertices"):
        px, py = points[kind]
        pick = rng.choice(len(px), PER_KIND, replace=False)
        x.append(px[pick])
        y.append(py[pick])
    # vertices shared by two or three outlines, where the boundary rule decides
    shared = shapely.STRtree(geoms).query(shapely.points(*points["vertices"]),
                                          predicate="intersects")[0]
    many = np.flatnonzero(np.bincount(shared) > 1)[:PER_KIND]
    x.append(points["vertices"][0][many])
    y.append(points["vertices"][1][many])
    x, y = np.concatenate(x), np.concatenate(y)
    point, owner = [], []
    with db.session() as s:
        for k, (px, py) in enumerate(zip(x.tolist(), y.tolist(), strict=True)):
            where = from_shape(Point(px, py), srid=4326)  # the exact doubles, as WKB
            for code in s.scalars(select(Unit.code).where(func.ST_Covers(Unit.geom, where))):
                point.append(k)
                owner.append(int(code))
    point, owner = np.array(point, dtype=np.int64), np.array(owner, dtype=np.int64)
    got = index.locate_many(x, y)
    assert check_against_covers(got, point, owner) == 0
    n_cover = np.bincount(point, minlength=len(x))
    assert (n_cover[-len(many):] >= 2).all() and len(many) > 50  # shared vertices were asked
    assert (n_cover == 0).any() and (n_cover == 1).any()  # and points in none and in one
