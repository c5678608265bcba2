"""Which units' public contacts (leader name and phone) a lookup answer carries, per caller.

- Every unit above the 党员中心户 level has a contact that is posted (the 楼栋长's in the
  building, DOMAIN.md): a single lookup shows them for the chain it answers, to anyone.
- A 党员中心户 is a member's own home: its head's contact goes only to callers who may read
  the members of its subtree (staff of that subtree, admin), in every answer.
- A batch is how a city-wide list would be harvested: a public batch (or a member token's)
  carries codes and names, no contact at all; a token that reads units gets the contacts of
  its subtree's units (those outside stay null).

A contact that is not shown is ``"contact": null`` (``leader`` and ``phone`` null in the
columns table), so every answer keeps one shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gridsvc.access import Permission, Principal

if TYPE_CHECKING:
    from gridsvc.services.locator import CityIndex

EVERYWHERE = "/"  # the path every unit's path starts with


@dataclass(frozen=True)
class Contacts:
    """The subtree (a unit path, ``/`` for everywhere, None for nowhere) whose units'
    contacts are shown, for units above the 党员中心户 level and for 党员中心户."""

    units: str | None = EVERYWHERE
    households: str | None = None

    @classmethod
    def for_caller(cls, viewer: Principal, *, batch: bool) -> Contacts:
        scope = viewer.scope_path or EVERYWHERE  # None: a city-wide token (or no units)
        units: str | None = EVERYWHERE
        if batch:
            units = scope if viewer.may(Permission.READ_UNITS) else None
        households = scope if viewer.may(Permission.READ_MEMBERS) else None
        return cls(units, households)

    def units_shown(self, index: CityIndex) -> bool | np.ndarray:
        """True, False, or a flag per index row: may this answer show that unit's contact?"""
        return _shown(index, self.units)

    def households_shown(self, index: CityIndex) -> bool | np.ndarray:
        return _shown(index, self.households)

    def shown(self, index: CityIndex) -> bool | np.ndarray:
        """One flag, or one per row, for units and 党员中心户 together."""
        units, households = self.units_shown(index), self.households_shown(index)
        if isinstance(units, bool) and isinstance(households, bool) and units == households:
            return units
        level = index.hierarchy.household.level if index.hierarchy.household else -1
        return np.where(index.levels == level, households, units)


ALL = Contacts(EVERYWHERE, EVERYWHERE)  # the command line (an administrator)
PUBLIC_SINGLE = Contacts(EVERYWHERE, None)  # the public's single lookup
NONE = Contacts(None, None)  # the public's batch


def _shown(index: CityIndex, path: str | None) -> bool | np.ndarray:
    if path is None:
        return False
    if path == EVERYWHERE:
        return True
    return index.in_subtree(path)


def flag(shown: bool | np.ndarray, row: int) -> bool:
    """``shown`` for one row."""
    return shown if isinstance(shown, bool) else bool(shown[row])
