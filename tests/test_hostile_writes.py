"""Requests that answered 500 (issue 9, item 8) and uploads left behind (item 9): an empty
``If-Match`` tag, a coordinate too large for a float, a full disk; uploads kept in the
service's own folder and stale ones removed at start. Each refusal is a 4xx (503 for the disk)
problem with nothing stored, on both databases."""

from __future__ import annotations

import errno
import io
import os
import time

import pytest
from api_support import G3, app_client, bearer
from members_support import city, city_services, write_csv
from ogc_support import ogc_records
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage

from gridsvc.access import cli_principal
from gridsvc.services.boundaries import import_records
from gridsvc.settings import Settings
from gridsvc.storage import units as q
from gridsvc.storage.models import Member, RosterImport, Unit

pytestmark = pytest.mark.storage

HUGE = "1" + "0" * 309  # a 310-digit integer: past any float
HUGE_RING = ('{"type": "Polygon", "coordinates": [[[120.904, 32.0], [' + HUGE
             + ', 32.0], [120.906, 32.004], [120.904, 32.0]]]}')


@pytest.fixture
def client(settings):
    with app_client(settings) as c:
        assert import_records(c.application.extensions["gridsvc"], ogc_records(),
            viewer=cli_principal()).stored
        yield c


def unit_state(client, code: str) -> tuple[int, str]:
    svc = client.application.extensions["gridsvc"]
    with svc.db.session() as s:
        unit = s.scalar(select(Unit).where(Unit.code == code))
        return unit.version, q.geometries([unit])[0].wkt


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_an_empty_if_match_tag_is_412_not_500(client, settings, method):
    before = unit_state(client, G3)
    body = {} if method == "delete" else {
        "data": '{"type": "Feature", "geometry": null, "properties": {"name": "x"}}',
        "content_type": "application/json"}
    for tag in ('""', '"' + G3 + "-" + "9" * 5000 + '"'):
        resp = getattr(client, method)(f"/ogc/collections/grid/items/{G3}",
                                       headers=bearer(settings, "admin") | {"If-Match": tag},
                                       **body)
        assert resp.status_code == 412, resp.get_json()
        assert resp.get_json()["type"] == "/problems/precondition-failed"
    assert unit_state(client, G3) == before


def test_a_coordinate_past_any_float_is_400_on_ogc_and_the_editor(client, settings):
    before = unit_state(client, G3)
    planner = bearer(settings, "planner")
    version = before[0]
    calls = [
        ("patch", f"/ogc/collections/grid/items/{G3}", '{"geometry": ' + HUGE_RING + "}",
         {"If-Match": f'"{G3}-{version}"'}),
        ("post", f"/api/v1/units/{G3}/geometry/check", HUGE_RING, {}),
        ("put", f"/api/v1/units/{G3}/geometry", HUGE_RING, {"If-Match": f'"{G3}-{version}"'}),
        ("post", f"/api/v1/units/{G3}/geometry/check",
         HUGE_RING.replace(HUGE, "1e400"), {}),  # reads as infinity
    ]
    for method, url, data, headers in calls:
        resp = getattr(client, method)(url, data=data, content_type="application/json",
                                       headers=planner | headers)
        problem = resp.get_json()
        assert resp.status_code == 400, (url, problem)
        assert problem["field"] == "geometry", problem
    assert unit_state(client, G3) == before


@pytest.fixture
def members_app(settings, tmp_path):
    city_services(settings, tmp_path).close()
    uploads = tmp_path / "uploads"
    with app_client(Settings(database_url=settings.database_url,
                             instance_dir=settings.instance_dir,
                             upload_dir=str(uploads))) as c:
        yield c, uploads


def roster_file(tmp_path) -> bytes:
    e = city().gazetteer[0]
    return write_csv(tmp_path / "r.csv", [["李四", "13900001111", "", e.address, "", "", "",
                                            "", "", ""]]).read_bytes()


def counts(client) -> tuple[int, int]:
    svc = client.application.extensions["gridsvc"]
    with svc.db.session() as s:
        return (s.scalar(select(func.count()).select_from(Member)),
                s.scalar(select(func.count()).select_from(RosterImport)))


def test_a_full_disk_is_503_with_retry_after_and_stores_nothing(members_app, settings,
                                                                 tmp_path, monkeypatch):
    client, uploads = members_app

    def full(self, dst, buffer_size=16384):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FileStorage, "save", full)
    resp = client.post("/api/v1/rosters", headers=bearer(settings, "staff"), data={
        "file": (io.BytesIO(roster_file(tmp_path)), "r.csv")})
    assert resp.status_code == 503, resp.get_json()
    assert resp.get_json()["type"] == "/problems/storage-full"
    assert int(resp.headers["Retry-After"]) > 0
    assert counts(client) == (0, 0)
    assert list(uploads.iterdir()) == []


def test_uploads_wait_in_the_service_folder_and_leave_nothing(members_app, settings, tmp_path,
                                                              monkeypatch):
    client, uploads = members_app
    from gridsvc.web import members as web_members

    seen = []
    real = web_members.members.import_members

    def spy(svc, path, **kw):
        seen.append((path.parent.parent, path.exists(), oct(uploads.stat().st_mode & 0o777)))
        return real(svc, path, **kw)

    monkeypatch.setattr(web_members.members, "import_members", spy)
    resp = client.post("/api/v1/rosters", headers=bearer(settings, "staff"), data={
        "file": (io.BytesIO(roster_file(tmp_path)), "r.csv")})
    assert resp.status_code == 201, resp.get_json()
    assert seen == [(uploads, True, "0o700")]
    assert list(uploads.iterdir()) == []


def test_stale_uploads_are_removed_when_the_service_starts(settings, tmp_path):
    uploads = tmp_path / "uploads"
    stale, fresh, other = (uploads / "gridsvc-roster-crashed", uploads / "gridsvc-roster-now",
                           uploads / "keep-me")
    for folder in (stale, fresh, other):
        folder.mkdir(parents=True)
        (folder / "r.csv").write_text("姓名,手机号\n张三,13800000000\n", encoding="utf-8")
    old = time.time() - 3600
    for path in (stale, other):
        os.utime(path, (old, old))
    with app_client(Settings(database_url=settings.database_url,
                             instance_dir=settings.instance_dir, upload_dir=str(uploads))):
        pass
    assert not stale.exists() and fresh.exists() and other.exists()
