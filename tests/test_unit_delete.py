"""Deleting a unit (services/unit_delete.py): refused with children, a stale version or outside
the viewer's subtree; otherwise its members move as a boundary change moves them, the history
records it and the boundaries revision moves (the lookup index rebuilds). Both databases."""

from __future__ import annotations

import dataclasses

import pytest
from api_support import B1, B2, C1, C2, G1, H1
from ogc_support import add_members, ogc_records
from sqlalchemy import select

from gridsvc.access import Principal, Role, cli_principal
from gridsvc.services.boundaries import import_records
from gridsvc.services.context import Services
from gridsvc.services.errors import Conflict, Forbidden, NotFound, VersionConflict
from gridsvc.services.lookup import place
from gridsvc.services.unit_delete import delete_unit
from gridsvc.storage import units as q
from gridsvc.storage.models import AssignmentChange, Member, Unit, WorkOrg

pytestmark = pytest.mark.storage

ZHAO = "13800000003"  # lives in B2, about 66 m east of B1


@pytest.fixture
def svc(settings):
    services = Services.from_settings(dataclasses.replace(settings, index_check_seconds=0))
    assert import_records(services, ogc_records(), viewer=cli_principal()).stored
    yield services
    services.close()


def revision(svc: Services) -> int:
    with svc.db.session() as s:
        return q.revision(s, q.BOUNDARIES)


def unit_ids(svc: Services) -> dict[str, int]:
    with svc.db.session() as s:
        return {code: id_ for code, id_ in s.execute(select(Unit.code, Unit.id))}


def member(svc: Services, member_id: int) -> Member:
    with svc.db.session() as s:
        return s.get(Member, member_id)


def planner(svc: Services, scope_code: str) -> Principal:
    with svc.db.session() as s:
        path = s.scalar(select(Unit.path).where(Unit.code == scope_code))
    return Principal(Role.PLANNER, "planner", scope_code=scope_code, scope_path=path)


def test_deleting_a_building_moves_its_members_and_the_lookup_index(svc):
    members = add_members(svc)
    ids = unit_ids(svc)
    index = svc.locator.current()
    assert index.codes[place(index, 120.9017, 32.0007, 200).row] == B2
    before = revision(svc)
    outcome = delete_unit(svc, B2, expected_version=1, viewer=cli_principal())
    assert outcome.revision == before + 1 == revision(svc)
    assert B2 not in unit_ids(svc)
    [move] = outcome.moves  # only 赵敏: the others live in B1
    assert move.id == members[ZHAO] and move.from_code == B2 and move.to_code == B1
    assert move.fallback and 50 < move.distance_m < 80
    zhao = member(svc, members[ZHAO])
    assert zhao.building_id == ids[B1] and zhao.status == "needs-confirmation"
    assert zhao.match["fallback"] is True
    for phone in ("13800000001", "13800000002"):
        m = member(svc, members[phone])
        assert (m.building_id, m.household_id, m.status) == (ids[B1], ids[H1], "assigned")
    with svc.db.session() as s:
        [history] = s.scalars(select(AssignmentChange)).all()
    assert (history.subject_id, history.from_code, history.to_code,
            history.boundary_revision) == (members[ZHAO], B2, B1, outcome.revision)
    placed = place(svc.locator.current(), 120.9017, 32.0007, 200)  # the index was rebuilt
    assert placed.fallback and svc.locator.current().codes[placed.row] == B1


def test_a_unit_with_children_a_stale_version_or_an_unknown_code_is_refused(svc):
    before = revision(svc)
    with pytest.raises(Conflict) as refused:
        delete_unit(svc, G1, viewer=cli_principal())
    assert refused.value.extra["children"] == 2 and refused.value.status == 409
    with pytest.raises(VersionConflict):
        delete_unit(svc, B2, expected_version=7, viewer=cli_principal())
    with pytest.raises(NotFound):
        delete_unit(svc, "nope", viewer=cli_principal())
    assert {G1, B2} <= set(unit_ids(svc)) and revision(svc) == before


def test_only_a_viewer_whose_subtree_holds_the_unit_may_delete_it(svc):
    with pytest.raises(Forbidden):
        delete_unit(svc, B2, viewer=planner(svc, C2))
    assert B2 in unit_ids(svc)
    delete_unit(svc, B2, viewer=planner(svc, C1))
    assert B2 not in unit_ids(svc)


def test_staff_confirmed_members_and_work_orgs_lose_the_deleted_unit_with_a_reason(svc):
    members = add_members(svc)
    with svc.db.session() as s:
        zhao = s.get(Member, members[ZHAO])
        zhao.match = {"method": "staff"}  # confirmed by staff: boundary changes keep it
        s.add(WorkOrg(name="某公司党支部", status="assigned", community_id=unit_ids(svc)[B2],
                      match={}))
    outcome = delete_unit(svc, B2, viewer=cli_principal())
    assert outcome.moves == [] and outcome.cleared_members == [members[ZHAO]]
    assert len(outcome.cleared_work_orgs) == 1
    zhao = member(svc, members[ZHAO])
    assert zhao.building_id is None and zhao.status == "needs-confirmation"
    assert B2 in zhao.reason and zhao.match["unit_deleted"] == B2
    with svc.db.session() as s:
        org = s.scalars(select(WorkOrg)).one()
        [history] = s.scalars(select(AssignmentChange)).all()
    assert org.community_id is None and org.status == "needs-confirmation" and B2 in org.reason
    assert (history.from_code, history.to_code, history.reason) == (B2, None, "unit deleted")


def test_deleting_a_household_gives_its_members_the_household_rule_picks_now(svc):
    members = add_members(svc)
    outcome = delete_unit(svc, H1, viewer=cli_principal())
    assert {m.id for m in outcome.moves} == set(members.values())
    assert all(m.from_household == H1 and m.to_household is None for m in outcome.moves)
    for member_id in members.values():
        assert member(svc, member_id).household_id is None
    assert H1 not in unit_ids(svc)
