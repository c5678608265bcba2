"""A boundary change previews exactly the members who move, and applying it records them."""

from __future__ import annotations

import dataclasses

import pytest
from api_support import B1, B2, G1, H1, sample_records
from shapely.geometry import box
from sqlalchemy import select

from gridsvc.access import cli_principal
from gridsvc.services import boundaries as svc_boundaries
from gridsvc.services.context import Services
from gridsvc.storage.models import AssignmentChange, Member, Unit

pytestmark = pytest.mark.storage
B3 = G1 + "03"


@pytest.fixture
def svc(settings):
    services = Services.from_settings(settings)
    svc_boundaries.import_records(services, sample_records(), viewer=cli_principal())
    with services.db.session() as s:
        ids = {code: id_ for code, id_ in s.execute(select(Unit.code, Unit.id))}
        homes = [("王芳", "13800000001", 120.9007, 32.0008, B1),
                 ("李强", "13800000002", 120.9009, 32.0006, B1),
                 ("赵敏", "13800000003", 120.9017, 32.0007, B2)]
        s.add_all(Member(name=n, phone=p, lon=x, lat=y, status="assigned",
                         building_id=ids[b], household_id=ids[H1], match={"method": "point"},
                         skills=[], intentions=[], roles=[]) for n, p, x, y, b in homes)
    yield services
    services.close()


def redrawn() -> list:
    """B1 loses its east part to a new building B3."""
    records = {r.code: r for r in sample_records()}
    b1 = records[B1]
    return [dataclasses.replace(b1, geometry=box(120.9005, 32.0005, 120.9008, 32.0010)),
            dataclasses.replace(b1, code=B3, name="阳光小区3栋", row=10,
                                geometry=box(120.9008, 32.0005, 120.9010, 32.0010))]


def members(svc) -> dict[str, tuple]:
    with svc.db.session() as s:
        rows = s.execute(select(Member.phone, Unit.code, Member.status)
                         .join(Unit, Unit.id == Member.building_id)).all()
    return {phone: (code, status) for phone, code, status in rows}


def test_preview_lists_exactly_the_members_who_move_and_changes_nothing(svc):
    before = members(svc)
    preview = svc_boundaries.import_records(svc, redrawn(), dry_run=True, viewer=cli_principal())
    assert preview.report.ok and not preview.stored
    moved = [(m.subject, m.label, m.from_code, m.to_code) for m in preview.moves]
    assert moved == [("member", "李*", B1, B3)]
    assert preview.moves[0].to_chain[:3] == preview.moves[0].from_chain[:3]
    assert members(svc) == before
    with svc.db.session() as s:
        assert s.scalar(select(Unit).where(Unit.code == B3)) is None
        assert s.scalars(select(AssignmentChange)).all() == []


def test_apply_moves_members_and_records_history(svc):
    outcome = svc_boundaries.import_records(svc, redrawn(), viewer=cli_principal())
    assert outcome.stored and [m.to_code for m in outcome.moves] == [B3]
    assert members(svc)["13800000002"] == (B3, "assigned")
    assert members(svc)["13800000001"] == (B1, "assigned")
    with svc.db.session() as s:
        [change] = s.scalars(select(AssignmentChange)).all()
    assert (change.subject, change.from_code, change.to_code) == ("member", B1, B3)
    assert change.boundary_revision == outcome.revision
    again = svc_boundaries.import_records(svc, redrawn(), viewer=cli_principal())
    assert again.moves == [] and again.updated == 0


def test_home_left_uncovered_becomes_needs_confirmation(svc):
    records = {r.code: r for r in sample_records()}
    shrunk = dataclasses.replace(records[B2], geometry=box(120.9018, 32.0005, 120.9020, 32.0010))
    outcome = svc_boundaries.import_records(svc, [shrunk], viewer=cli_principal())
    [move] = outcome.moves
    assert move.fallback and move.to_code == B2 and move.distance_m == pytest.approx(9.4, abs=1)
    assert members(svc)["13800000003"] == (B2, "needs-confirmation")
