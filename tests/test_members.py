"""Member and work-unit registration (双报到) through the service layer, on both databases."""

from __future__ import annotations

import pytest
from members_support import (
    OTHER_DISTRICT,
    ambiguous_address,
    city,
    city_services,
    community_of,
    road_point,
    write_csv,
    write_xlsx,
)
from sqlalchemy import func, select

from gridsvc.access import cli_principal
from gridsvc.services import members, work_orgs
from gridsvc.services.context import Services
from gridsvc.services.errors import InvalidInput
from gridsvc.services.registration import roster_rows
from gridsvc.spatial.coordsys import from_wgs84
from gridsvc.storage.models import Member, RosterImport, RosterRow, Unit, WorkOrg


@pytest.fixture
def svc(settings, tmp_path):
    services = city_services(settings, tmp_path)
    yield services
    services.close()


def roster() -> list[list[object]]:
    """Good rows, the bad rows named in the issue, and rows staff must confirm. Rows are
    spreadsheet rows: the header is row 1."""
    g = city().gazetteer
    gcj = from_wgs84(g[1].lon, g[1].lat, "gcj02")
    lon, lat, _, _ = road_point()
    return [
        ["张三", "138 0000 0001", "市供电公司", g[0].address + "2单元301室", "", "", "",
         "电工、维修", "政策宣传", "楼栋长"],                                          # 2
        ["李四", "+86 139-0000-0002", "", "", gcj[0], gcj[1], "gcj02", "", "", ""],     # 3
        ["", "13700000003", "", g[2].address, "", "", "", "", "", ""],                  # 4
        ["王五", "1380000", "", g[2].address, "", "", "", "", "", ""],                  # 5
        ["赵六", "13700000006", "", "不存在路99号无名小区3栋", "", "", "", "", "", ""],  # 6
        ["钱七", "13700000007", "", "", 200, 32, "wgs84", "", "", ""],                  # 7
        ["孙八", "13800000001", "", g[3].address, "", "", "", "", "", ""],              # 8
        ["周九", "13700000009", "", g[-1].compound, "", "", "", "", "", ""],            # 9
        ["吴十", "13700000010", "", "", lon, lat, "wgs84", "", "", ""],                 # 10
        ["郑一", "13700000011", "", ambiguous_address(), "", "", "", "", "", ""],       # 11
        ["", "", "", "", "", "", "", "", "", ""],                                       # 12
        ["冯二", "13700000013", "", g[5].address, "", "", "", "", "", "书记"],          # 13
        ["陈三", "13700000014", "", "", 120.5, 32.0, "wgs84", "", "", ""],              # 14
        ["褚四", "13700000015", "", "", 120.9, 60.0, "wgs84", "", "", ""],              # 15
    ]


def rows_by_number(svc, roster_id: int) -> dict[int, dict]:
    return {r["row"]: r for r in roster_rows(svc, roster_id, limit=1000,
        viewer=cli_principal())["items"]}


def test_roster_with_bad_rows_stores_every_good_row_and_reports_every_bad_one(svc, tmp_path):
    g = city().gazetteer
    result = members.import_members(svc, write_csv(tmp_path / "members.csv", roster()),
        viewer=cli_principal())
    assert result["counts"] == {"rows": 13, "assigned": 2, "needs-confirmation": 3,
                                "rejected": 8, "created": 5, "updated": 0, "unchanged": 0}
    rows = rows_by_number(svc, result["id"])
    assert 12 not in rows  # the blank row is skipped; the rows after keep their numbers
    rejected = {n: (r["problems"][0]["field"], r["problems"][0]["rule"])
                for n, r in rows.items() if r["status"] == "rejected"}
    assert rejected == {4: ("name", "missing-value"), 5: ("phone", "bad-phone"),
                        6: ("home_address", "address-not-found"), 7: ("lon", "bad-point"),
                        8: ("phone", "duplicate"), 13: ("roles", "unknown-role"),
                        14: ("lon", "not-covered"), 15: ("lat", "bad-point")}
    assert rows[8]["problems"][0]["message"] == "duplicate of row 2 (same phone)"
    assert all(p["row"] == n for n, r in rows.items() for p in r["problems"])
    assert rows[6]["data"]["居住地址"] == "不存在路99号无名小区3栋"  # kept as written

    with svc.db.session() as session:
        stored = {m.phone: m for m in session.scalars(select(Member))}
        code_of = dict(session.execute(select(Unit.id, Unit.code)).all())
    assert set(stored) == {"13800000001", "13900000002", "13700000009", "13700000010",
                           "13700000011"}  # assigned and needs-confirmation rows
    zhang, li = stored["13800000001"], stored["13900000002"]
    assert rows[2]["member_id"] == zhang.id and rows[6]["member_id"] is None
    assert (zhang.status, zhang.match["method"]) == ("assigned", "address")
    assert code_of[zhang.building_id] == g[0].building_code
    assert code_of[zhang.household_id].startswith(g[0].building_code)
    assert zhang.skills == ["电工", "维修"] and zhang.roles == ["楼栋长"]
    assert zhang.intentions == ["政策宣传"] and zhang.work_unit == "市供电公司"
    assert (li.status, li.match["method"], li.input_point["coordsys"]) == (
        "assigned", "point", "gcj02")
    assert code_of[li.building_id] == g[1].building_code
    assert abs(li.lon - g[1].lon) < 1e-7 and abs(li.lat - g[1].lat) < 1e-7


def test_weak_or_ambiguous_address_and_fallback_point_need_confirmation(svc, tmp_path):
    g = city().gazetteer
    result = members.import_members(svc, write_csv(tmp_path / "members.csv", roster()),
        viewer=cli_principal())
    rows = rows_by_number(svc, result["id"])
    assert rows[9]["status"] == rows[11]["status"] == "needs-confirmation"
    assert rows[9]["problems"][0]["field"] == "home_address"
    with svc.db.session() as session:
        weak = session.scalar(select(Member).where(Member.phone == "13700000009"))
        ambiguous = session.scalar(select(Member).where(Member.phone == "13700000011"))
    assert weak.match["status"] == "weak" and weak.building_id is None
    assert {c["unit_code"] for c in weak.match["candidates"]} <= {
        e.building_code for e in g if e.compound == g[-1].compound}
    assert len(weak.match["candidates"]) >= 2
    assert ambiguous.match["status"] == "ambiguous" and ambiguous.building_id is None
    districts = {c["district"] for c in ambiguous.match["candidates"]}
    assert OTHER_DISTRICT in districts and len(ambiguous.match["candidates"]) == 2

    _, _, nearest_code, distance = road_point()
    with svc.db.session() as session:
        fallback = session.scalar(select(Member).where(Member.phone == "13700000010"))
        proposed = session.get(Unit, fallback.building_id)
    assert rows[10]["status"] == "needs-confirmation" and rows[10]["problems"][0]["field"] == "lon"
    assert fallback.match["fallback"] is True
    assert fallback.match["nearest"]["code"] == nearest_code == proposed.code
    assert fallback.match["distance_m"] == pytest.approx(distance, abs=0.5)
    assert 0 < fallback.match["distance_m"] <= svc.settings.nearest_radius_m
    assert fallback.household_id is None  # not assigned until staff confirm


def test_reimport_is_idempotent_and_keeps_staff_confirmation(svc, tmp_path):
    path = write_csv(tmp_path / "members.csv", roster())
    members.import_members(svc, path, viewer=cli_principal())
    confirmed = members.list_members(svc, search="周九", viewer=cli_principal())["items"][0]
    members.confirm_member(svc, confirmed["id"], city().gazetteer[-1].building_code,
        viewer=cli_principal())

    def versions() -> dict[str, int]:
        with svc.db.session() as session:
            return dict(session.execute(select(Member.phone, Member.version)).all())

    before = versions()
    again = members.import_members(svc, path, viewer=cli_principal())
    assert again["counts"]["created"] == 0 and again["counts"]["updated"] == 0
    assert again["counts"]["unchanged"] == 5
    assert versions() == before
    zhou = members.get_member(svc, confirmed["id"], viewer=cli_principal())
    assert (zhou["status"], zhou["match"]["method"]) == ("assigned", "staff")

    changed = roster()
    changed[0][7] = "电工、维修、法律咨询"
    result = members.import_members(svc, write_csv(tmp_path / "changed.csv", changed),
        viewer=cli_principal())
    assert (result["counts"]["updated"], result["counts"]["unchanged"]) == (1, 4)
    after = versions()
    assert after.pop("13800000001") == before.pop("13800000001") + 1
    assert after == before


def test_gbk_csv_and_xlsx_rosters_read_the_same(svc, tmp_path):
    g = city().gazetteer
    rows = [["欧阳娜娜", 13812345678, "ＡＢＣ 科技公司", g[6].address, "", "", "", "", "", ""],
            ["司马光", "13912345678", "", "", g[7].lon, g[7].lat, "wgs84", "", "", "党员先锋"]]
    gbk = members.import_members(svc, write_csv(tmp_path / "gbk.csv", rows, encoding="gbk"),
        viewer=cli_principal())
    with svc.db.session() as session:
        first = {m.phone: (m.name, m.work_unit, m.building_id, m.version)
                 for m in session.scalars(select(Member))}
    assert gbk["counts"]["assigned"] == 2
    assert first["13812345678"][:2] == ("欧阳娜娜", "ABC科技公司")
    xlsx = members.import_members(svc, write_xlsx(tmp_path / "members.xlsx", rows),
        viewer=cli_principal())
    assert xlsx["counts"] | {"unchanged": 0} == gbk["counts"] | {"created": 0}
    assert xlsx["counts"]["unchanged"] == 2
    with svc.db.session() as session:
        second = {m.phone: (m.name, m.work_unit, m.building_id, m.version)
                  for m in session.scalars(select(Member))}
    assert second == first


def test_a_header_without_name_or_phone_is_refused_listing_the_columns(settings, tmp_path):
    path = write_csv(tmp_path / "bad.csv", [["张三", "幸福路1号"]], header=["名字", "地址"])
    svc = Services.from_settings(settings)
    with pytest.raises(InvalidInput) as err:
        members.import_members(svc, path, viewer=cli_principal())
    svc.close()
    assert "name (姓名)" in err.value.detail and "columns found: 名字, 地址" in err.value.detail


def test_a_failure_half_way_through_a_roster_stores_nothing(svc, tmp_path, monkeypatch):
    real = members._roster_row
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(members, "_roster_row", failing)
    with pytest.raises(RuntimeError):
        members.import_members(svc, write_csv(tmp_path / "members.csv", roster()),
            viewer=cli_principal())
    with svc.db.session() as session:
        counts = [session.scalar(select(func.count()).select_from(t))
                  for t in (Member, RosterImport, RosterRow)]
    assert len(calls) == 3 and counts == [0, 0, 0]


def test_work_org_lands_on_its_community_and_the_report_shows_both_links(svc, tmp_path):
    g = city().gazetteer
    people = [["甲", "13600000001", "ＡＢＣ 科技公司", g[10].address, "", "", "", "", "", ""],
              ["乙", "13600000002", "ABC科技公司", g[200].address, "", "", "", "", "", ""],
              ["丙", "13600000003", "别的单位", g[300].address, "", "", "", "", "", ""]]
    members.import_members(svc, write_csv(tmp_path / "members.csv", people), viewer=cli_principal())
    lon, lat, _, _ = road_point()  # an office on a road: in a community, in no building
    org = work_orgs.register_work_org(svc, {"name": "ABC科技公司", "lon": lon, "lat": lat,
                                            "coordsys": "wgs84", "contact_name": "李主任",
                                            "contact_phone": "0513-85123456"},
                                                viewer=cli_principal())
    assert org["status"] == "assigned" and org["members"] == 2  # linked after the members
    assert org["community"]["code"] == community_of(lon, lat)

    report = work_orgs.work_org_report(svc, name="ABC 科技公司", viewer=cli_principal())
    assert report["organisation"]["community"]["code"] == community_of(lon, lat)
    homes = {m["phone"]: m["residence"] for m in report["members"]}
    assert set(homes) == {"13600000001", "13600000002"}
    for phone, entry in (("13600000001", g[10]), ("13600000002", g[200])):
        assert homes[phone]["building"]["code"] == entry.building_code
        assert homes[phone]["community"]["code"] == community_of(entry.lon, entry.lat)
        assert homes[phone]["grid"]["code"] == entry.building_code[:15]


def test_work_org_roster_by_address_and_by_point(svc, tmp_path):
    g = city().gazetteer
    header = ["单位名称", "办公地址", "经度", "纬度", "坐标系", "联系人", "联系电话"]
    rows = [["市供电公司", g[20].address, "", "", "", "王", "13800001111"],
            ["市税务局", "", g[40].lon, g[40].lat, "wgs84", "", ""],
            ["", g[20].address, "", "", "", "", ""],
            ["远方公司", "", 120.5, 32.0, "wgs84", "", ""]]
    path = write_csv(tmp_path / "orgs.csv", rows, header=header)
    result = work_orgs.import_work_orgs(svc, path, viewer=cli_principal())
    assert result["counts"]["assigned"] == 2 and result["counts"]["rejected"] == 2
    listed = {o["name"]: o for o in work_orgs.list_work_orgs(svc, viewer=cli_principal())["items"]}
    assert listed["市供电公司"]["community"]["code"] == community_of(g[20].lon, g[20].lat)
    assert listed["市税务局"]["community"]["code"] == community_of(g[40].lon, g[40].lat)
    again = work_orgs.import_work_orgs(svc, path, viewer=cli_principal())
    assert again["counts"] == result["counts"]
    with svc.db.session() as session:
        assert session.scalar(select(func.count()).select_from(WorkOrg)) == 2
