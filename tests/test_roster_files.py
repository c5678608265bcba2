"""Roster files that lost rows or answered 500 (issue 9, items 6 and 8): an XLSX whose
``<dimension>`` understates its rows is read whole; a malformed workbook, one with a DOCTYPE
entity, a CSV with only a header and a CSV cell past csv's field limit are 400 problems naming
the file (and row), with nothing stored, on both databases."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from api_support import app_client, bearer
from members_support import HEADER, city, city_services, write_csv, write_xlsx
from sqlalchemy import func, select

from gridsvc.storage.models import Member, RosterImport, RosterRow

pytestmark = pytest.mark.storage


@pytest.fixture
def client(settings, tmp_path):
    city_services(settings, tmp_path).close()
    with app_client(settings) as c:
        yield c


def rows(n: int) -> list[list[object]]:
    e = city().gazetteer
    return [[f"成员{i}", f"1390000{i:04d}", "", e[i].address, "", "", "", "", "", ""]
            for i in range(n)]


def rewrite_sheet(path: Path, change) -> Path:
    """Rewrite the first worksheet's XML of an .xlsx with ``change(xml) -> xml``."""
    out = path.with_name("changed-" + path.name)
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = change(data.decode()).encode()
            dst.writestr(info, data)
    return out


def upload(client, settings, path: Path):
    return client.post("/api/v1/rosters", headers=bearer(settings, "staff"), data={
        "file": (io.BytesIO(path.read_bytes()), path.name.removeprefix("changed-"))})


def stored(client) -> tuple[int, int, int]:
    svc = client.application.extensions["gridsvc"]
    with svc.db.session() as s:
        return tuple(s.scalar(select(func.count()).select_from(m))
                     for m in (Member, RosterImport, RosterRow))


def test_an_xlsx_whose_dimension_understates_its_rows_is_read_whole(client, settings,
                                                                     tmp_path):
    path = write_xlsx(tmp_path / "r.xlsx", rows(5))
    lying = rewrite_sheet(path, lambda xml: re.sub(r'<dimension ref="[^"]*"/>',
                                                   '<dimension ref="A1:J2"/>', xml))
    resp = upload(client, settings, lying)
    assert resp.status_code == 201, resp.get_json()
    counts = resp.get_json()["counts"]
    assert sum(counts[k] for k in ("assigned", "needs-confirmation", "rejected")) == 5
    listed = client.get(f"/api/v1/rosters/{resp.get_json()['id']}/rows?limit=100",
                        headers=bearer(settings, "staff")).get_json()["items"]
    assert sorted(r["row"] for r in listed) == [2, 3, 4, 5, 6]  # an outcome for every row


@pytest.mark.parametrize("change", [
    lambda xml: xml.replace("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>", "")
    .replace("<worksheet", '<!DOCTYPE worksheet [<!ENTITY boom "x">]><worksheet', 1),
    lambda xml: xml[: len(xml) // 2],  # cut off: malformed XML
], ids=["doctype-entity", "truncated-xml"])
def test_a_malformed_or_entity_bearing_workbook_is_400_and_stores_nothing(
        client, settings, tmp_path, change):
    path = rewrite_sheet(write_xlsx(tmp_path / "r.xlsx", rows(3)), change)
    resp = upload(client, settings, path)
    problem = resp.get_json()
    assert resp.status_code == 400, problem
    assert problem["field"] == "file" and "r.xlsx" in problem["detail"]
    assert stored(client) == (0, 0, 0)


def test_a_csv_with_only_a_header_is_400(client, settings, tmp_path):
    resp = upload(client, settings, write_csv(tmp_path / "r.csv", []))
    assert resp.status_code == 400 and "no rows" in resp.get_json()["detail"]
    assert stored(client) == (0, 0, 0)


def test_a_csv_cell_past_the_field_limit_is_400_naming_the_row(client, settings, tmp_path):
    big = rows(3)
    big[1][3] = "路" * 140_000
    resp = upload(client, settings, write_csv(tmp_path / "r.csv", big))
    problem = resp.get_json()
    assert resp.status_code == 400, problem
    assert problem["row"] == 3 and problem["field"] in ("file", HEADER[3])
    assert stored(client) == (0, 0, 0)
