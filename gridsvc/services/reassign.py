"""Who moves when boundaries change: members and 党员中心户 whose chain changes.

A boundary import stores its units in a transaction; before committing, the tree as that
transaction sees it is indexed again and compared with the tree before the import:

- a member's chain is the chain of the micro-grid that holds their home point (street →
  community → grid → building) plus their 党员中心户; it changes when the point now falls in
  another building, when an ancestor of their building changed, or when the household rule
  picks another household; and when the home now lies outside every micro-grid (or inside one
  again). Members confirmed by staff (``match.method == "staff"``) keep
  their building; members without a home point are not moved.
- a household's chain is its own ancestors; it changes when an ancestor changed.

A dry run lists the moves and rolls back. A real import applies them in the same transaction
and records each in ``assignment_history`` with the new boundary revision. A member whose home
falls in no micro-grid any more becomes needs-confirmation with the nearest building as a
flagged fallback (never silently assigned).

Moves name members by id and masked name only (张*): previews go to planners, who need to see
how many people move where, not who they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from gridsvc.hierarchy import Hierarchy
from gridsvc.privacy import mask_name
from gridsvc.services.locator import CityIndex, city_index_in
from gridsvc.services.lookup import households_many, place_many
from gridsvc.settings import Settings
from gridsvc.storage.models import AssignmentChange, Member


@dataclass(frozen=True)
class Move:
    subject: str  # "member" or "household"
    id: int  # the member's id, or the household unit's id
    label: str  # masked member name, or the household's name and code
    from_chain: tuple[str, ...]
    to_chain: tuple[str, ...]
    from_household: str | None = None
    to_household: str | None = None
    fallback: bool = False
    distance_m: float | None = None

    @property
    def from_code(self) -> str | None:
        return self.from_chain[-1] if self.from_chain else None

    @property
    def to_code(self) -> str | None:
        return self.to_chain[-1] if self.to_chain else None

    def as_dict(self) -> dict[str, Any]:
        data = {
            "subject": self.subject, "id": self.id, "label": self.label,
            "from": list(self.from_chain), "to": list(self.to_chain),
            "from_household": self.from_household, "to_household": self.to_household,
            "fallback": self.fallback,
        }
        if self.distance_m is not None:
            data["distance_m"] = round(self.distance_m, 1)
        return data


@dataclass
class _Home:
    id: int
    name: str
    lon: float
    lat: float
    building_id: int | None
    household_id: int | None
    unit_no: str | None
    staff: bool
    status: str
    was_fallback: bool


def _homes(session: Session) -> list[_Home]:
    rows = session.execute(
        select(Member.id, Member.name, Member.lon, Member.lat, Member.building_id,
               Member.household_id, Member.match, Member.status)
        .where(Member.lon.is_not(None), Member.lat.is_not(None)).order_by(Member.id)
    ).all()
    return [
        _Home(r.id, r.name, r.lon, r.lat, r.building_id, r.household_id,
              (r.match or {}).get("unit"), (r.match or {}).get("method") == "staff", r.status,
              bool((r.match or {}).get("fallback")))
        for r in rows
    ]


def snapshot(session: Session, hierarchy: Hierarchy) -> CityIndex:
    """The tree before a change, to compare with."""
    return city_index_in(session, hierarchy)


def _row_of_id(index: CityIndex) -> dict[int, int]:
    return {int(i): n for n, i in enumerate(index.ids)}


def member_moves(session: Session, before: CityIndex, after: CityIndex,
                 settings: Settings) -> tuple[list[Move], list[dict[str, Any]]]:
    """Members whose chain or household changes, and the updates that apply it."""
    homes = [h for h in _homes(session) if not h.staff]
    if not homes:
        return [], []
    lon = np.array([h.lon for h in homes])
    lat = np.array([h.lat for h in homes])
    rows, fallback, dist = place_many(after, lon, lat, settings.nearest_radius_m)
    hh_rows, _rules = households_many(after, rows, lon, lat, settings.household_radius_m,
                                      [h.unit_no for h in homes])
    old_rows = _row_of_id(before)
    moves: list[Move] = []
    updates: list[dict[str, Any]] = []
    for home, row, hh, fb, d in zip(homes, rows.tolist(), hh_rows.tolist(), fallback.tolist(),
                                    dist.tolist(), strict=True):
        old_row = old_rows.get(home.building_id, -1) if home.building_id else -1
        old_chain = tuple(before.chain_codes(old_row)) if old_row >= 0 else ()
        new_chain = tuple(after.chain_codes(row)) if row >= 0 else ()
        old_hh = old_rows.get(home.household_id, -1) if home.household_id else -1
        old_hh_code = str(before.codes[old_hh]) if old_hh >= 0 else None
        new_hh_code = str(after.codes[hh]) if hh >= 0 else None
        status = "needs-confirmation" if fb or row < 0 else "assigned"
        if home.status == "needs-confirmation" and not home.was_fallback:
            status = home.status  # waiting for staff for another reason (a weak address)
        if old_chain == new_chain and old_hh_code == new_hh_code and status == home.status:
            continue
        moves.append(Move("member", home.id, mask_name(home.name) or "", old_chain, new_chain,
                          old_hh_code, new_hh_code, bool(fb), d if fb else None))
        updates.append({
            "id": home.id,
            "building_id": int(after.ids[row]) if row >= 0 else None,
            "household_id": int(after.ids[hh]) if hh >= 0 else None,
            "status": status, "fallback": bool(fb), "distance_m": d if fb else None,
        })
    return moves, updates


def household_moves(before: CityIndex, after: CityIndex) -> list[Move]:
    """Households (党员中心户 units) whose chain of ancestors changed."""
    level = after.hierarchy.household.level if after.hierarchy.household else None
    if level is None:
        return []
    moves = []
    for row in np.flatnonzero(after.levels == level).tolist():
        code = str(after.codes[row])
        old = before.row_of_code.get(code, -1)
        if old < 0:
            continue  # a new household: nothing moved
        old_chain = tuple(before.chain_codes(old))[:-1]
        new_chain = tuple(after.chain_codes(row))[:-1]
        if old_chain != new_chain:
            moves.append(Move("household", int(after.ids[row]), f"{after.names[row]} ({code})",
                              old_chain, new_chain))
    return moves


def apply_member_updates(session: Session, updates: list[dict[str, Any]],
                         moves: list[Move], revision: int) -> None:
    """Store the new assignments and one history row per move."""
    by_id = {u["id"]: u for u in updates}
    for member in session.scalars(select(Member).where(Member.id.in_(list(by_id)))):
        u = by_id[member.id]
        member.building_id, member.household_id = u["building_id"], u["household_id"]
        if member.status != "rejected":
            member.status = u["status"]
        match = dict(member.match or {})
        match.update(fallback=u["fallback"], distance_m=u["distance_m"],
                     reassigned_at_revision=revision)
        member.match = match
    session.add_all(
        AssignmentChange(subject=m.subject, subject_id=m.id, from_code=m.from_code,
                         to_code=m.to_code, boundary_revision=revision,
                         reason="boundary change")
        for m in moves
    )
    session.flush()

