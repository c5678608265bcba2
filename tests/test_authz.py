"""Authorization cannot fail open: every service function that scopes takes a required actor,
and the one decision point (``authz.allowed``) agrees with the SQL filters lists use."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
from members_support import city, city_services, write_csv
from sqlalchemy import select

import gridsvc.services
from gridsvc.access import PUBLIC, Principal, Role, cli_principal, system_principal
from gridsvc.services import authz, scope
from gridsvc.services.authz import Action, MemberResource, UnitResource
from gridsvc.services.errors import Forbidden, NotFound
from gridsvc.services.members import import_members
from gridsvc.settings import Settings
from gridsvc.storage.models import Member, Unit

ACTOR_NAMES = ("viewer", "actor")
# Words in a function's source that mean it decides what a caller may see or do.
DECIDES = ("scope.", "authz.", "sees_member", "unit_filter", "member_filter")


def _service_functions() -> list[tuple[str, object]]:
    found = []
    for info in pkgutil.walk_packages(gridsvc.services.__path__, "gridsvc.services."):
        module = importlib.import_module(info.name)
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ == info.name and not name.startswith("_"):
                found.append((f"{info.name}.{name}", fn))
    return found


def test_no_service_function_accepts_a_missing_actor() -> None:
    functions = _service_functions()
    assert len(functions) > 100  # the walk found the services
    defaulted, optional = [], []
    for name, fn in functions:
        for param in inspect.signature(fn).parameters.values():  # type: ignore[arg-type]
            if param.name not in ACTOR_NAMES or "Principal" not in str(param.annotation):
                continue  # (audit.query's ``actor`` is a filter by name, not the caller)
            if param.default is not inspect.Parameter.empty:
                defaulted.append(name)
            if "None" in str(param.annotation) or "Optional" in str(param.annotation):
                optional.append(name)
    assert defaulted == [], f"actor with a default: {defaulted}"
    assert optional == [], f"actor that may be None: {optional}"


def test_every_service_that_scopes_names_its_actor() -> None:
    """A public function whose body decides scope (calls scope/authz) must take the actor."""
    missing = []
    for name, fn in _service_functions():
        if name.startswith(("gridsvc.services.scope.", "gridsvc.services.authz.")):
            continue  # the decision point itself
        source = inspect.getsource(fn)  # type: ignore[arg-type]
        if any(word in source for word in DECIDES):
            params = inspect.signature(fn).parameters  # type: ignore[arg-type]
            if not any(p in params for p in ACTOR_NAMES):
                missing.append(name)
    assert missing == [], f"scoping functions without an actor: {missing}"


def test_allowed_refuses_a_missing_actor() -> None:
    with pytest.raises(TypeError):
        authz.allowed(None, Action.READ_UNIT, UnitResource("/S01/"))  # type: ignore[arg-type]


def test_unknown_action_is_denied_even_to_admins() -> None:
    assert not authz.allowed(cli_principal(), "launch-rockets", UnitResource("/S01/"))


def test_system_actors_are_named_admins() -> None:
    cli = cli_principal()
    assert cli.role is Role.ADMIN and cli.name.startswith("cli:")
    assert system_principal("health check").name == "system:health check"


def _staff(scope_path: str, code: str) -> Principal:
    return Principal(Role.STAFF, "s", token_id=1, scope_code=code, scope_path=scope_path)


def test_relationship_rules() -> None:
    staff = _staff("/S01/C01/", "C01")
    inside, outside = UnitResource("/S01/C01/G01/"), UnitResource("/S01/C02/")
    assert authz.allowed(staff, Action.READ_UNIT, inside)
    assert not authz.allowed(staff, Action.READ_UNIT, outside)
    assert not authz.allowed(staff, Action.READ_UNIT, UnitResource("/S01/C011/"))  # a sibling
    me = Principal(Role.MEMBER, "m", member_id=7)
    assert authz.allowed(me, Action.READ_MEMBER, MemberResource(7, "/S01/C02/"))
    assert not authz.allowed(me, Action.READ_MEMBER, MemberResource(8, "/S01/C02/"))
    assert not authz.allowed(me, Action.WRITE_MEMBER, MemberResource(7, "/S01/C02/"))
    assert not authz.allowed(staff, Action.READ_MEMBER, MemberResource(8, None))
    assert not authz.allowed(PUBLIC, Action.READ_MEMBER, MemberResource(8, "/S01/C01/"))
    with pytest.raises(NotFound):
        authz.authorize(staff, Action.READ_UNIT, outside, what="unit")
    with pytest.raises(Forbidden):
        authz.authorize(staff, Action.WRITE_UNIT, outside, what="unit")


def test_one_record_rules_agree_with_list_filters(settings: Settings, tmp_path: Path) -> None:
    """For every unit and member of the demo city, and staff scoped to each community,
    ``allowed`` says yes exactly for the rows the SQL filters return (both databases)."""
    svc = city_services(settings, tmp_path)
    rows = []
    for i, e in enumerate(city().gazetteer[:30]):
        rows.append([f"党员{i}", f"1380000{i:04d}", "", e.address, "", "", "", "", "", ""])
    roster = write_csv(tmp_path / "r.csv", rows)
    import_members(svc, roster, viewer=cli_principal())
    with svc.db.session() as session:
        units = session.execute(select(Unit.id, Unit.code, Unit.path, Unit.level)).all()
        paths = {u.id: u.path for u in units}
        members = session.execute(select(Member.id, Member.building_id)).all()
        assert len(members) == 30
        communities = [u for u in units if u.level == 2][:3]
        for c in communities:
            staff = _staff(c.path, c.code)
            in_filter = set(session.scalars(select(Unit.id).where(scope.unit_filter(staff))))
            by_rule = {u.id for u in units
                       if authz.allowed(staff, Action.READ_UNIT, UnitResource(u.path))}
            assert in_filter == by_rule and in_filter
            seen = set(session.scalars(select(Member.id).where(scope.member_filter(staff))))
            by_rule = {m.id for m in members if authz.allowed(
                staff, Action.READ_MEMBER, MemberResource(m.id, paths.get(m.building_id)))}
            assert seen == by_rule
        assert any(
            session.scalars(select(Member.id).where(scope.member_filter(_staff(c.path, c.code))))
            .first() for c in communities)


def test_every_need_transition_is_decided_by_authz() -> None:
    import gridsvc.services.loop.common  # noqa: F401  (registers the need rules)
    from gridsvc.domain.loop import TRANSITIONS

    assert {f"need:{a}" for a in TRANSITIONS} <= authz.actions()
    assert not authz.allowed(PUBLIC, "need:claim", object())  # not a need: no rule applies
