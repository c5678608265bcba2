"""A member's input and its assignment: reading one roster row or request body into
``MemberInput``, and placing many members at once (``assign_members``) by address or point,
with their 党员中心户. One ``Snapshot`` (index and gazetteer) serves a whole roster."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gridsvc.geocode.matcher import MatchResult
from gridsvc.services import lookup
from gridsvc.services.registration import (
    ASSIGNED,
    NEEDS_CONFIRMATION,
    REJECTED,
    PointInput,
    Progress,
    Snapshot,
    mobile_phone,
    org_name,
    quiet,
    read_point,
    split_list,
    text,
    text_problems,
)
from gridsvc.storage.models import Member
from gridsvc.validation.report import Problem, Severity

ROLES = ("楼栋长", "党员先锋")


@dataclass
class MemberInput:
    name: str
    phone: str
    party_org: str | None = None
    work_unit: str | None = None
    home_address: str | None = None
    point: PointInput | None = None
    skills: list[str] = dataclasses.field(default_factory=list)
    intentions: list[str] = dataclasses.field(default_factory=list)
    roles: list[str] = dataclasses.field(default_factory=list)

    def columns(self) -> dict[str, Any]:
        return {"name": self.name, "phone": self.phone, "party_org": self.party_org,
                "work_unit": self.work_unit, "home_address": self.home_address,
                "input_point": self.point.given if self.point else None,
                "skills": self.skills, "intentions": self.intentions, "roles": self.roles}


def read_member(values: Mapping[str, Any], row: int | None = None
                ) -> tuple[MemberInput | None, list[Problem]]:
    """Check one member's fields; the input, or None and the problems (row and field)."""
    problems: list[Problem] = []

    def problem(rule: str, fld: str, message: str) -> None:
        problems.append(Problem("error", rule, message, row=row, field=fld))

    name = text(values.get("name"))
    if name is None:
        problem("missing-value", "name", "the name is missing")
    phone = None
    try:
        phone = mobile_phone(values.get("phone"))
    except ValueError as exc:
        rule = "missing-value" if text(values.get("phone")) is None else "bad-phone"
        problem(rule, "phone", str(exc))
    point = read_point(values, problems, row)
    roles = split_list(values.get("roles"))
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        problem("unknown-role", "roles",
                f"unknown role {'、'.join(unknown)}; roles are {'、'.join(ROLES)}")
    address = text(values.get("home_address"))
    has_point = any(text(values.get(k)) for k in ("lon", "lat"))
    if address is None and not has_point:
        problem("missing-value", "home_address",
                "give a home address or a point (lon, lat and coordsys)")
    if problems or name is None or phone is None:
        return None, problems
    inp = MemberInput(
        name=name, phone=phone, party_org=text(values.get("party_org")),
        work_unit=org_name(values.get("work_unit")), home_address=address, point=point,
        skills=split_list(values.get("skills")), intentions=split_list(values.get("intentions")),
        roles=roles,
    )
    problems = text_problems(inp.columns(), Member, row)
    return (None if problems else inp), problems


# --- assignment --------------------------------------------------------------------------------


@dataclass
class Assignment:
    """Where one member lands. Rows are CityIndex rows (-1: none)."""

    status: str
    reason: str | None = None
    field: str | None = None
    building: int = -1  # for needs-confirmation: the proposed (nearest) building, if any
    household: int = -1
    household_rule: str | None = None
    lon: float | None = None  # wgs84 point used
    lat: float | None = None
    match: dict[str, Any] = dataclasses.field(default_factory=dict)
    rule: str | None = None  # why it is not assigned: weak-address, fallback-point, ...

    def problems(self, row: int | None = None) -> list[Problem]:
        if self.status == ASSIGNED:
            return []
        severity: Severity = "error" if self.status == REJECTED else "warning"
        return [Problem(severity, self.rule or self.status, self.reason or "", row=row,
                        field=self.field)]


def _address_match(result: MatchResult) -> dict[str, Any]:
    return {"method": "address", "status": result.status, "score": round(result.score, 3),
            "level": result.level, "reason": result.reason,
            "candidates": [c.as_dict() for c in result.candidates]}


def _by_address(snap: Snapshot, address: str) -> tuple[Assignment | None, MatchResult]:
    result, row = lookup.resolve_address(snap.svc, address)
    if row < 0 or result.entry is None:
        return None, result
    entry = result.entry
    match = {"method": "address", "coordsys": "wgs84", "score": round(result.score, 3),
             "level": result.level, "address": entry.address, "fallback": False,
             "distance_m": 0.0}
    return Assignment(ASSIGNED, building=row, lon=entry.lon, lat=entry.lat, match=match), result


def _not_placed(result: MatchResult | None, point_reason: str | None) -> Assignment:
    """No building: needs-confirmation on a weak/ambiguous address, else rejected."""
    if result is not None and result.status != "unmatched" and result.candidates:
        reason = f"address {result.status}: {result.reason}; staff must confirm the building"
        if point_reason:
            reason += f" ({point_reason})"
        return Assignment(NEEDS_CONFIRMATION, reason, "home_address",
                          match=_address_match(result) | {"fallback": False},
                          rule=f"{result.status}-address")
    reasons = []
    if result is not None:
        reasons.append(f"address not found in the gazetteer ({result.reason})")
    if point_reason:
        reasons.append(point_reason)
    fld = "home_address" if result is not None else "lon"
    return Assignment(REJECTED, "; ".join(reasons), fld,
                      match=_address_match(result) if result is not None else {},
                      rule="address-not-found" if result is not None else "not-covered")


def assign_members(snap: Snapshot, inputs: Sequence[MemberInput],
                   progress: Progress = quiet) -> list[Assignment]:
    """The assignment of every input against one snapshot; points are placed in one
    vectorised call."""
    radius = snap.svc.settings.nearest_radius_m
    out: list[Assignment | None] = [None] * len(inputs)
    results: list[MatchResult | None] = [None] * len(inputs)
    unit_nos: list[str | None] = [None] * len(inputs)
    for i, member in enumerate(inputs):
        if member.home_address:
            out[i], results[i] = _by_address(snap, member.home_address)
            # (the ignore below: parsed results have parts)
            unit_nos[i] = results[i].parts.unit  # type: ignore[union-attr]
        if i % 500 == 0:
            progress("address", i, len(inputs))
    progress("address", len(inputs), len(inputs))
    pending = [i for i, m in enumerate(inputs) if out[i] is None and m.point is not None]
    points = [p for i in pending if (p := inputs[i].point) is not None]  # all of pending
    lon = np.array([p.lon for p in points], dtype=float)
    lat = np.array([p.lat for p in points], dtype=float)
    rows, fallback, dist = lookup.place_many(snap.index, lon, lat, radius)
    for k, i in enumerate(pending):
        point = inputs[i].point
        assert point is not None
        row, d = int(rows[k]), float(dist[k])
        match = {"method": "point", "coordsys": point.given["coordsys"], "score": 1.0,
                 "level": "point", "fallback": bool(fallback[k]),
                 "distance_m": round(d, 1) if row >= 0 else None}
        if row >= 0 and not fallback[k]:
            out[i] = Assignment(ASSIGNED, building=row, lon=point.lon, lat=point.lat,
                                match=match)
        elif row >= 0:
            # (the ignore below: entry() of a row >= 0 is a dict)
            nearest = snap.entry(row) | {"distance_m": round(d, 1)}  # type: ignore[operator]
            addr = results[i]
            if addr is not None and addr.candidates and addr.status != "unmatched":
                match["address"] = _address_match(addr)
            out[i] = Assignment(
                NEEDS_CONFIRMATION,
                f"the point is in no micro-grid; the nearest is {nearest['code']} "
                f"{nearest['name']} at {round(d, 1)} m (a fallback: staff must confirm)",
                "lon", building=row, lon=point.lon, lat=point.lat,
                match=match | {"nearest": nearest}, rule="fallback-point")
        else:
            reason = f"the point is in no micro-grid and none is within {radius:g} m"
            placed = _not_placed(results[i], reason)
            placed.lon, placed.lat = point.lon, point.lat
            out[i] = placed
    done: list[Assignment] = [
        a if a is not None else _not_placed(results[i], None)  # no point, address unplaced
        for i, a in enumerate(out)
    ]
    add_households(snap, done, unit_nos)
    return done


def add_households(snap: Snapshot, assignments: Sequence[Assignment],
                    unit_nos: Sequence[str | None]) -> None:
    """The 党员中心户 of every assigned member, in one vectorised call."""
    todo = [i for i, a in enumerate(assignments) if a.status == ASSIGNED]
    if not todo:
        return
    picked = [assignments[i] for i in todo]
    hh, rule = lookup.households_many(
        snap.index, np.array([a.building for a in picked], dtype=np.int64),
        np.array([a.lon for a in picked], dtype=float),
        np.array([a.lat for a in picked], dtype=float),
        snap.svc.settings.household_radius_m, [unit_nos[i] for i in todo])
    for i, a, h, r in zip(todo, picked, hh.tolist(), rule.tolist(), strict=True):
        if h >= 0:
            a.household, a.household_rule = h, lookup.RULES[r]
        if unit_nos[i]:
            a.match = a.match | {"unit": unit_nos[i]}  # the home's 单元, for later reassignment
