"""The demo roster: deterministic, messy like a real one, and it registers cleanly."""

import pytest

from gridsvc.access import cli_principal
from gridsvc.demo.city import generate_city
from gridsvc.demo.members import demo_roster, write_roster
from gridsvc.services.boundaries import import_records
from gridsvc.services.context import Services
from gridsvc.services.members import import_members


@pytest.fixture(scope="module")
def city():
    return generate_city(seed=1)


def test_roster_is_deterministic_and_messy(city):
    rows = demo_roster(city, seed=1)
    assert rows == demo_roster(city, seed=1) and rows != demo_roster(city, seed=2)
    assert len(rows) > 2 * len(city.gazetteer)
    assert len({r["手机"] for r in rows}) == len(rows)
    addresses = [r["居住地址"] for r in rows]
    assert any("号楼" in a for a in addresses) and any(a.startswith("江苏省") for a in addresses)
    assert any(r["坐标系"] == "gcj02" and not r["居住地址"] for r in rows)


@pytest.mark.storage
def test_demo_roster_registers(settings, city, tmp_path):
    svc = Services.from_settings(settings)
    try:
        import_records(svc, city.records, viewer=cli_principal())
        rows = demo_roster(city, seed=1)
        outcome = import_members(svc, write_roster(rows, tmp_path / "roster.csv"),
            viewer=cli_principal())
    finally:
        svc.close()
    counts = outcome["counts"]
    assert counts["rejected"] == 0
    assert counts["assigned"] >= 0.95 * len(rows)
    assert 0 < counts["needs-confirmation"] < 0.05 * len(rows)
