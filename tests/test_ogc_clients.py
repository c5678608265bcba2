"""OGC API - Features with real clients against the app on a live 127.0.0.1 server, on both
databases: GDAL's OAPIF driver (Debian's ogrinfo 3.6, the token in GDAL_HTTP_HEADERS) reads every
collection and every feature of the demo city, paging; geopandas/pyogrio (the venv's GDAL
3.12, GDAL_HTTP_AUTH=BEARER) reads every collection with counts and types right, and in a
Gauss-Krüger zone; QGIS 3.22 headless (Debian's python3-qgis) reads every layer through Basic
authentication, an admin and a planner connection in one process each seeing their own
features, and reprojects to a Gauss-Krüger zone where the server puts it; OWSLib reads,
creates, updates and deletes a grid, and an invalid edit comes back as a problem document with
nothing stored."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter

import pytest
import shapely
from api_support import C2, G1, G2, G3, H1, bearer
from flask import request
from members_support import city
from ogc_support import FREE_IN_C2, OUTSIDE_C2, feature, ogc_records
from shapely.geometry import box
from sqlalchemy import func, select

from gridsvc.access import cli_principal
from gridsvc.services.boundaries import import_records
from gridsvc.storage import units as q
from gridsvc.storage.models import Unit

pytestmark = pytest.mark.storage

LEVELS = ["street", "community", "grid", "building", "household"]
NEW = C2 + "09"


@pytest.fixture
def requests_seen(live_app) -> list[str]:
    """Every path and query the live app answers, in order."""
    seen: list[str] = []
    live_app.before_request(lambda: seen.append(request.full_path))
    return seen


@pytest.fixture
def svc(live_app):
    return live_app.extensions["gridsvc"]


def ogrinfo_exe() -> str:
    exe = shutil.which("ogrinfo")
    if exe is None:
        pytest.fail("ogrinfo not found: install the Debian package gdal-bin (`make install`)",
                    pytrace=False)
    return exe


def ogrinfo(token: str, *args: str) -> str:
    done = subprocess.run(
        [ogrinfo_exe(), "--config", "GDAL_HTTP_HEADERS", f"Authorization: Bearer {token}",
         "--config", "GDAL_HTTP_TIMEOUT", "60", *args],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def stored_codes(svc) -> dict[int, set[str]]:
    with svc.db.session() as s:
        out: dict[int, set[str]] = {}
        for code, level in s.execute(select(Unit.code, Unit.level)):
            out.setdefault(level, set()).add(code)
    return out


def test_gdal_lists_and_reads_every_feature_of_every_collection(live_server, svc,
                                                                requests_seen, settings):
    assert import_records(svc, city().records, viewer=cli_principal()).stored
    token = bearer(settings, "admin")["Authorization"].split()[1]
    url = "OAPIF:" + live_server.url("/ogc")
    codes = stored_codes(svc)

    listing = ogrinfo(token, "-ro", url)
    assert re.findall(r"^\d+: (\w+) \(title: ", listing, re.M) == LEVELS

    summary = ogrinfo(token, "-ro", "-al", "-so", url)
    counts = [int(n) for n in re.findall(r"^Feature Count: (\d+)$", summary, re.M)]
    assert counts == [len(codes[level]) for level in range(1, 6)]
    assert "Geometry: Point" in summary and "Geometry: Multi Polygon" in summary

    requests_seen.clear()
    full = ogrinfo(token, "-ro", "-al", "-q", "-geom=NO", "-oo", "PAGE_SIZE=100", url)
    read: dict[str, set[str]] = {}
    layer = None
    for line in full.splitlines():
        started = re.match(r"^OGRFeature\((\w+)\):", line)
        if started:
            layer = started[1]
        found = re.match(r"^  code \(String\) = (\S+)$", line)
        if found:
            read.setdefault(layer, set()).add(found[1])
    assert Counter(re.findall(r"^OGRFeature\((\w+)\):", full, re.M)) == {
        key: len(codes[level]) for level, key in enumerate(LEVELS, start=1)}
    assert read == {key: codes[level] for level, key in enumerate(LEVELS, start=1)}
    pages = [p for p in requests_seen if p.startswith("/ogc/collections/building/items")]
    offsets = sorted({int(m[1]) for p in pages if (m := re.search(r"offset=(\d+)", p))})
    assert offsets == list(range(100, len(codes[4]), 100))  # followed every next link
    assert all("limit=100" in p for p in pages)


def test_gdal_without_a_token_gets_nothing(live_server, svc):
    assert import_records(svc, ogc_records(), viewer=cli_principal()).stored
    done = subprocess.run([ogrinfo_exe(), "-ro", "-so", "OAPIF:" + live_server.url("/ogc")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0 and "grid" not in done.stdout


@pytest.fixture
def owslib_headers():
    """OWSLib keeps the headers of every Features object in one module-level dict: put it
    back as it was after the test."""
    from owslib import ogcapi

    saved = dict(ogcapi.REQUEST_HEADERS)
    yield
    ogcapi.REQUEST_HEADERS.clear()
    ogcapi.REQUEST_HEADERS.update(saved)


def refused(call) -> dict:
    """The problem document of a request OWSLib raised for (it raises RuntimeError with the
    response body)."""
    with pytest.raises(RuntimeError) as caught:
        call()
    return json.loads(str(caught.value))


def test_owslib_reads_creates_updates_and_deletes(live_server, svc, settings, owslib_headers):
    from owslib.ogcapi.features import Features

    assert import_records(svc, ogc_records(), viewer=cli_principal()).stored
    api = Features(live_server.url("/ogc/"), headers=bearer(settings, "admin"))
    assert {link["rel"] for link in api.links} >= {"service-desc", "conformance", "data"}
    assert api.api()["openapi"].startswith("3.0")
    assert any(c.endswith("/create-replace-delete") for c in api.conformance()["conformsTo"])
    assert api.feature_collections() == LEVELS
    assert api.collection("grid")["extent"]["spatial"]["bbox"] == [[120.9, 32.0, 120.906,
                                                                     32.004]]
    page = api.collection_items("grid", limit=2)
    assert page["numberMatched"] == 3 and [f["id"] for f in page["features"]] == [G1, G2]
    assert api.collection_item("household", H1)["properties"]["parent_code"]

    assert api.collection_item_create("grid", feature(NEW, FREE_IN_C2, C2, leader="李娜"))
    created = api.collection_item("grid", NEW)
    assert created["properties"]["version"] == 1 and created["properties"]["leader"] == "李娜"
    assert shapely.equals(shapely.geometry.shape(created["geometry"]), FREE_IN_C2)

    smaller = box(120.9031, 32.0005, 120.9039, 32.0025)
    assert api.collection_item_update("grid", NEW, feature(NEW, smaller, C2, name="新网格二",
                                                           version=1))
    updated = api.collection_item("grid", NEW)
    assert updated["properties"]["version"] == 2 and updated["properties"]["name"] == "新网格二"

    outside = refused(lambda: api.collection_item_update(
        "grid", NEW, feature(NEW, OUTSIDE_C2, C2, version=2)))
    assert outside["status"] == 422 and outside["type"] == "/problems/validation-failed"
    assert "outside-parent" in {p["rule"] for p in outside["report"]["problems"]}
    overlap = refused(lambda: api.collection_item_create(
        "grid", feature(NEW + "0", box(120.9031, 32.0005, 120.9045, 32.0035), C2)))
    assert overlap["status"] == 422
    assert "overlapping-siblings" in {p["rule"] for p in overlap["report"]["problems"]}
    stale = refused(lambda: api.collection_item_update("grid", NEW, feature(
        NEW, FREE_IN_C2, C2, version=1)))
    assert stale["status"] == 412 and stale["type"] == "/problems/precondition-failed"
    with svc.db.session() as s:  # nothing of the refused edits was stored
        unit = s.scalar(select(Unit).where(Unit.code == NEW))
        assert unit.version == 2 and shapely.equals(q.geometries([unit])[0], smaller)
        assert s.scalar(select(func.count()).select_from(Unit).where(
            Unit.code == NEW + "0")) == 0

    assert refused(lambda: api.collection_item_delete("grid", NEW))["status"] == 428
    api.headers["If-Match"] = f'"{NEW}-2"'  # OWSLib sends its headers with every request
    assert api.collection_item_delete("grid", NEW)
    del api.headers["If-Match"]
    assert refused(lambda: api.collection_item("grid", NEW))["status"] == 404
    assert [f["id"] for f in api.collection_items("grid")["features"]] == [G1, G2, G3]


GEOPANDAS_SCRIPT = """
import json, sys
import geopandas, pyogrio
url, crs = sys.argv[1], sys.argv[2] or None
out = {"layers": [name for name, _kind in pyogrio.list_layers(url)], "read": {}}
for key in sys.argv[3:]:
    frame = geopandas.read_file(url, layer=key, **({"CRS": crs} if crs else {}))
    out["read"][key] = {
        "codes": sorted(frame["code"]), "dtypes": {c: str(t) for c, t in frame.dtypes.items()},
        "epsg": frame.crs.to_epsg() if frame.crs is not None else None,
        "crs": frame.crs.to_string() if frame.crs is not None else None,
        "kinds": sorted(set(frame.geom_type)), "first": list(frame.geometry.iloc[0].coords[0])
        if frame.geom_type.iloc[0] == "Point" else None}
print(json.dumps(out))
"""


def geopandas_read(url: str, token: str, layers: list[str], crs: str = "") -> dict:
    """geopandas.read_file("OAPIF:...") in a child process of the venv's Python (pyogrio keeps
    the GIL while GDAL waits for the answer, so the live server's thread in this process
    could not answer), the token as GDAL_HTTP_AUTH=BEARER (new GDAL's OAPIF driver ignores
    GDAL_HTTP_HEADERS)."""
    import os
    import sys

    env = os.environ | {"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": token,
                        "GDAL_HTTP_TIMEOUT": "60"}
    done = subprocess.run([sys.executable, "-c", GEOPANDAS_SCRIPT, url, crs, *layers],
                          capture_output=True, text=True, timeout=600, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_geopandas_reads_every_collection_with_counts_and_types(live_server, svc, settings,
                                                                requests_seen):
    assert import_records(svc, city().records, viewer=cli_principal()).stored
    codes = stored_codes(svc)
    token = bearer(settings, "admin")["Authorization"].split()[1]
    out = geopandas_read("OAPIF:" + live_server.url("/ogc"), token, LEVELS)
    assert out["layers"] == LEVELS
    for level, key in enumerate(LEVELS, start=1):
        read = out["read"][key]
        assert set(read["codes"]) == codes[level], key
        assert read["dtypes"]["households"].lower().startswith("int"), (key, read["dtypes"])
        assert read["dtypes"]["version"].lower().startswith("int"), read["dtypes"]
        assert read["crs"] in ("OGC:CRS84", "EPSG:4326"), read
        assert read["kinds"] == ["Point" if key == "household" else "MultiPolygon"], key
    assert any("crs=" in p for p in requests_seen)  # new GDAL sends crs: it must be served


def test_geopandas_reads_a_gauss_kruger_zone(live_server, svc, settings):
    assert import_records(svc, ogc_records(), viewer=cli_principal()).stored
    token = bearer(settings, "admin")["Authorization"].split()[1]
    out = geopandas_read("OAPIF:" + live_server.url("/ogc"), token, ["household"],
                         crs="EPSG:4549")
    read = out["read"]["household"]
    assert read["epsg"] == 4549
    easting, northing = read["first"]
    assert 5e5 < easting < 6e5 and 3.5e6 < northing < 3.6e6  # x, y as GIS software holds them


QGIS_PYTHON = "/usr/bin/python3"


def qgis_read(url: str, connections: dict[str, str], levels: list[str],
              srsname: str = "") -> dict:
    """What Debian's QGIS 3.22 (python3-qgis, headless) reads: tests/qgis_client.py in a
    child process of the system Python, with a private HOME (its profile, auth database and
    network cache)."""
    import os
    import tempfile
    from pathlib import Path

    probe = subprocess.run([QGIS_PYTHON, "-c", "import qgis.core"], capture_output=True,
                           check=False)
    if probe.returncode != 0:
        pytest.fail("QGIS's Python bindings are missing: install the Debian packages "
                    "python3-qgis and qgis-providers (`make install`)", pytrace=False)
    script = Path(__file__).with_name("qgis_client.py")
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL"))}
        env |= {"HOME": home, "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": home}
        done = subprocess.run([QGIS_PYTHON, str(script), url, json.dumps(
            {"connections": connections, "levels": levels, "srsname": srsname})],
            capture_output=True, text=True, timeout=600, env=env, check=False)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_qgis_reads_every_layer_with_basic_auth_per_connection(live_server, svc, settings):
    assert import_records(svc, city().records, viewer=cli_principal()).stored
    codes = stored_codes(svc)
    with svc.db.session() as s:
        [community] = s.scalars(select(Unit.code).where(Unit.level == 2).order_by(
            Unit.code).limit(1)).all()
        below = {level: {c for c, in s.execute(select(Unit.code).where(
            Unit.level == level, Unit.path.like(f"%/{community}/%")))} for level in range(1, 6)}
    admin = bearer(settings, "admin")["Authorization"].split()[1]
    planner = bearer(settings, "planner", unit=community)["Authorization"].split()[1]
    out = qgis_read(live_server.url("/ogc"), {"admin": admin, "planner": planner}, LEVELS)
    for level, key in enumerate(LEVELS, start=1):
        seen = out["admin"][key]
        assert seen["valid"], seen
        assert seen["count"] == seen["read"] == len(codes[level]), (key, seen["count"])
        assert set(seen["codes"]) == codes[level]
        assert seen["fields"]["households"].lower().startswith("int"), seen["fields"]
        mine = out["planner"][key]
        assert mine["valid"] and set(mine["codes"]) == below[level], (key, mine.get("count"))
        assert mine["count"] == mine["read"] == len(below[level]), key
    with svc.db.session() as s:
        names = sorted(s.scalars(select(Unit.name).where(Unit.level == 3)))
    assert out["admin"]["grid"]["names"] == names  # Chinese names intact
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in n) for n in names)


def test_qgis_reprojects_to_a_gauss_kruger_zone_as_the_server_does(live_server, svc,
                                                                     settings):
    """QGIS 3.22's OAPIF provider reads CRS84 only (it sends no crs) and reprojects on the fly;
    in a project in EPSG:4549 a household sits where the server's crs=EPSG:4549 puts it."""
    from urllib.request import Request, urlopen

    assert import_records(svc, ogc_records(), viewer=cli_principal()).stored
    admin = bearer(settings, "admin")
    out = qgis_read(live_server.url("/ogc"), {"admin": admin["Authorization"].split()[1]},
                    ["household", "grid"], srsname="EPSG:4549")
    house = out["admin"]["household"]
    assert house["valid"] and house["count"] == 1 and house["crs"] == "EPSG:4326", house
    with urlopen(Request(live_server.url(f"/ogc/collections/household/items/{H1}"
                                         "?crs=EPSG:4549"), headers=admin), timeout=30) as r:
        north, east = json.load(r)["geometry"]["coordinates"]
    x, y = house["projected"]
    assert abs(x - east) < 0.05 and abs(y - north) < 0.05, (x, y, east, north)
    assert out["admin"]["grid"]["count"] == 3


@pytest.mark.parametrize("where, expect", [
    (f"parent_code = '{C2}'", {G3}), (f"code IN ('{G1}', '{G2}')", {G1, G2}),
    ("name LIKE '阳光%'", {G1, G2}), ("households IS NULL AND version >= 1", {G1, G2, G3})])
def test_gdal_attribute_filters_give_what_the_server_filters(live_server, svc, settings,
                                                             requests_seen, where, expect):
    """ogrinfo 3.6 reads the queryables and sends an equality -where as a simple property
    filter (the rest it filters itself): whatever it sends, the answer is what -where means."""
    assert import_records(svc, ogc_records(), viewer=cli_principal()).stored
    token = bearer(settings, "admin")["Authorization"].split()[1]
    out = ogrinfo(token, "-ro", "-q", "-geom=NO", "-where", where,
                  "OAPIF:" + live_server.url("/ogc"), "grid")
    assert set(re.findall(r"^  code \(String\) = (\S+)$", out, re.M)) == expect
    if where.startswith("parent_code ="):  # GDAL 3.6 sends an equality as the queryable
        assert any(f"parent_code={C2}" in p for p in requests_seen), requests_seen
