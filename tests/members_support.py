"""The small demo city for registration tests, and roster files written on the fly."""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import numpy as np
import shapely
from openpyxl import Workbook

from gridsvc.access import cli_principal
from gridsvc.demo.city import DemoCity, generate_city
from gridsvc.services.boundaries import import_records
from gridsvc.services.context import Services
from gridsvc.services.gazetteer import import_gazetteer
from gridsvc.settings import Settings
from gridsvc.spatial.metric import metric_epsg_for_geoms, to_metric

HEADER = ["姓名", "手机号", "工作单位", "居住地址", "经度", "纬度", "坐标系", "特长", "服务意向",
          "角色"]
OTHER_DISTRICT = "港闸区"
STAFF_ROUTES = [("get", "/api/v1/members"), ("get", "/api/v1/members/1"),
                ("put", "/api/v1/members/1"), ("post", "/api/v1/members/1/confirm"),
                ("post", "/api/v1/rosters"), ("get", "/api/v1/rosters/1"),
                ("get", "/api/v1/rosters/1/rows"), ("post", "/api/v1/work-orgs"),
                ("get", "/api/v1/work-orgs"), ("get", "/api/v1/work-orgs/1/report"),
                ("get", "/api/v1/members/me"), ("get", "/api/v1/audit"),
                ("get", "/api/v1/registration-requests"),
                ("post", "/api/v1/registration-requests/1/resolve")]
# For tests/test_openapi.py: one call per registration route; an empty body is 400 on the
# public route and every token-only route is 401 without a token.
REGISTRATION_CALLS = [(method, url, {"json": {}})
                      for method, url in [("post", "/api/v1/members"), *STAFF_ROUTES]]


@functools.cache
def city() -> DemoCity:
    return generate_city()


def city_services(settings: Settings, tmp_path: Path) -> Services:
    """Services on a database holding the demo city, plus one gazetteer entry that makes
    ``ambiguous_address()`` name the same compound and building in a second district."""
    svc = Services.from_settings(settings)
    assert import_records(svc, city().records, viewer=cli_principal()).stored
    e = city().gazetteer[0]
    extra = tmp_path / "extra-gazetteer.csv"
    extra.write_text("address,district,lon,lat,coordsys\n"
                     f"长江路5号{e.compound}{e.building},{OTHER_DISTRICT},120.80,32.05,wgs84\n",
                     encoding="utf-8")
    assert import_gazetteer(svc, extra).stored == 1
    return svc


def ambiguous_address() -> str:
    e = city().gazetteer[0]
    return e.compound + e.building  # no road, no district: this one or the other district's


def units(level: int) -> list:
    return [r for r in city().records if r.level == level]


def road_point() -> tuple[float, float, str, float]:
    """A wgs84 point on the road 5 m east of a compound (in no micro-grid), the code of the
    nearest building and its distance in metres (computed here with shapely)."""
    grid = units(3)[0]
    _, miny, maxx, maxy = grid.geometry.bounds
    lon, lat = maxx + 0.00005, (miny + maxy) / 2
    buildings = units(4)
    geoms = np.array([b.geometry for b in buildings], dtype=object)
    epsg = metric_epsg_for_geoms(geoms)
    dist = shapely.distance(to_metric(geoms, epsg), to_metric(shapely.Point(lon, lat), epsg))
    best = int(np.argmin(dist))
    return lon, lat, buildings[best].code, float(dist[best])


def community_of(lon: float, lat: float) -> str:
    """The community polygon covering a wgs84 point, found with shapely."""
    found = [c.code for c in units(2) if shapely.covers(c.geometry, shapely.Point(lon, lat))]
    assert len(found) == 1, found
    return found[0]


def write_csv(path: Path, rows: list[list[object]], header: list[str] = HEADER,
              encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_xlsx(path: Path, rows: list[list[object]], header: list[str] = HEADER) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def if_match(client, member_id: int, headers: dict[str, str]) -> dict[str, str]:
    """``headers`` with If-Match carrying the member's current ETag (read with them)."""
    etag = client.get(f"/api/v1/members/{member_id}", headers=headers).headers["ETag"]
    return headers | {"If-Match": etag}


def member_id(client, phone: str) -> int:
    """The id of the member with this phone (self-registration answers no member id)."""
    from sqlalchemy import select

    from gridsvc.storage.models import Member

    svc = client.application.extensions["gridsvc"]
    with svc.db.session() as session:
        found = session.scalar(select(Member.id).where(Member.phone == phone))
    assert found is not None, f"no member with phone {phone}"
    return found
