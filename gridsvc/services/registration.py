"""What member and work-unit registration (双报到) share.

- Reading fields: phones (spaces, dashes and +86 removed; a mainland mobile is
  ``^1[3-9]\\d{9}$``), lists written in one cell (``、 , ， ; ；``), organisation names
  (NFKC, so full-width becomes half-width, and no spaces: the same unit always has the same
  name), points with their coordsys.
- ``Snapshot``: one CityIndex and one Gazetteer for a whole batch, so a roster is assigned
  against one consistent picture and nothing is rebuilt per row.
- Roster imports: every row is stored as a ``RosterRow`` with its outcome and problems and
  listed for staff; rows are numbered as a spreadsheet shows them (header = row 1).

Outcomes: ``assigned``, ``needs-confirmation`` (staff must confirm: a weak or ambiguous
address, a fallback point) or ``rejected`` (with the reason and the field at fault).
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridsvc.access import Principal
from gridsvc.io.roster import Roster, RosterError, read_roster
from gridsvc.services.context import Services
from gridsvc.services.errors import InvalidInput, NotFound
from gridsvc.spatial.coordsys import (
    COORDSYS,
    SERVICE_EXTENT,
    CoordSysError,
    parse_coordsys,
    point_problem,
    to_wgs84,
)
from gridsvc.storage.models import Base, RosterImport, RosterRow
from gridsvc.validation.report import Problem
from gridsvc.validation.text_rules import TextRuleError, check_fields, limits_of

if TYPE_CHECKING:
    from gridsvc.geocode.matcher import Gazetteer
    from gridsvc.services.locator import CityIndex

ASSIGNED = "assigned"
NEEDS_CONFIRMATION = "needs-confirmation"
REJECTED = "rejected"
STATUSES = (ASSIGNED, NEEDS_CONFIRMATION, REJECTED)

MOBILE = re.compile(r"^1[3-9]\d{9}$")
_PHONE_NOISE = re.compile(r"[\s\-()（）]")
_LIST_SEPARATORS = re.compile(r"[、,，;；]")
MAX_PAGE = 1000
LIST_FIELDS = ("skills", "intentions", "roles")

Progress = Callable[[str, int, int], None]
T = TypeVar("T")


def quiet(_step: str, _done: int, _total: int) -> None:
    pass


# --- fields -----------------------------------------------------------------------------------


def text(value: Any) -> str | None:
    """A stripped string, or None for nothing / blank."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    out = str(value).strip()
    return out or None


def org_name(value: Any) -> str | None:
    """The canonical spelling of a unit or organisation name: NFKC, no whitespace."""
    raw = text(value)
    if raw is None:
        return None
    return "".join(unicodedata.normalize("NFKC", raw).split()) or None


def mobile_phone(value: Any) -> str:
    """A mainland mobile number as 11 digits, or ValueError saying what is wrong."""
    raw = text(value)
    if raw is None:
        raise ValueError("the phone is missing")
    digits = _PHONE_NOISE.sub("", unicodedata.normalize("NFKC", raw))
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix):]
    if not MOBILE.match(digits):
        raise ValueError("the phone is not a mainland mobile number (11 digits starting "
                         "13-19, e.g. 13812345678)")
    return digits


def any_phone(value: Any) -> str | None:
    """A mobile (normalised as above) or a landline such as 0513-85123456, else ValueError."""
    raw = text(value)
    if raw is None:
        return None
    try:
        return mobile_phone(raw)
    except ValueError:
        pass
    compact = _PHONE_NOISE.sub("", unicodedata.normalize("NFKC", raw))
    if re.fullmatch(r"0\d{9,11}", compact) or re.fullmatch(r"\d{7,8}", compact):
        return raw
    raise ValueError("the phone is neither a mobile number nor a landline (e.g. 0513-85123456)")


def split_list(value: Any) -> list[str]:
    """A list from a JSON list or from one cell separated by 、 , ， ; ；; blanks and repeats
    dropped, order kept."""
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else _LIST_SEPARATORS.split(str(value))
    out: list[str] = []
    for item in items:
        word = text(item)
        if word and word not in out:
            out.append(word)
    return out


def text_problems(columns: Mapping[str, Any], model: type[Base],
                  row: int | None = None) -> list[Problem]:
    """The text rules (``gridsvc.validation.text_rules``) over the values about to be stored
    in ``model``'s columns: at most the column's length, list fields item by item; a
    ``bad-text`` problem naming the field, or none."""
    present = {k: v for k, v in columns.items() if v is not None}
    try:
        check_fields(present, limits_of(model), row=row, list_fields=LIST_FIELDS)
    except TextRuleError as exc:
        return [Problem("error", "bad-text", f"{exc.field} {exc.reason}", row=row,
                        field=exc.field)]
    return []


@dataclass(frozen=True)
class PointInput:
    """A point as given (``given``: lon, lat, coordsys) and in wgs84."""

    lon: float  # wgs84
    lat: float  # wgs84
    given: dict[str, Any]


def read_point(values: Mapping[str, Any], problems: list[Problem],
               row: int | None = None) -> PointInput | None:
    """The point from ``lon``, ``lat`` and ``coordsys``, or None when none is given. A half
    point, a missing or unknown coordsys, a non-number or a point outside China is a problem
    naming the field (``lon``, ``lat`` or ``coordsys``)."""
    lon_raw, lat_raw, cs_raw = (text(values.get(k)) for k in ("lon", "lat", "coordsys"))
    if lon_raw is None and lat_raw is None:
        return None

    def problem(field: str, message: str) -> None:
        problems.append(Problem("error", "bad-point", message, row=row, field=field))

    if lon_raw is None or lat_raw is None:
        problem("lon" if lon_raw is None else "lat", "give both lon and lat, or neither")
        return None
    try:
        lon, lat = float(lon_raw), float(lat_raw)
    except ValueError:
        bad = "lon" if not _is_number(lon_raw) else "lat"
        problem(bad, f"{bad} {values.get(bad)!r} is not a number")
        return None
    if cs_raw is None:
        problem("coordsys", "coordsys is required with a point: one of " + ", ".join(COORDSYS))
        return None
    try:
        coordsys = parse_coordsys(cs_raw)
    except CoordSysError as exc:
        problem("coordsys", str(exc))
        return None
    try:
        wlon, wlat = to_wgs84(lon, lat, coordsys)
    except CoordSysError as exc:
        problem(_out_field(lon, lat), str(exc))
        return None
    reason = point_problem(wlon, wlat)
    if reason:
        problem(_out_field(lon, lat), reason)
        return None
    return PointInput(wlon, wlat, {"lon": lon, "lat": lat, "coordsys": coordsys})


def _is_number(raw: str) -> bool:
    try:
        float(raw)
    except ValueError:
        return False
    return True


def _out_field(lon: float, lat: float) -> str:
    """Which coordinate puts a point outside China: lat when lon alone is fine."""
    min_lon, _, max_lon, _ = SERVICE_EXTENT
    return "lat" if min_lon <= lon <= max_lon else "lon"


def first_problem(problems: Sequence[Problem]) -> InvalidInput:
    """The error for a single registration: the first problem, with all of them attached."""
    first = problems[0]
    return InvalidInput(f"{first.field}: {first.message}", field=first.field,
                        problems=[p.as_dict() for p in problems])


# --- one picture for a batch -------------------------------------------------------------------


class _Fixed(Generic[T]):
    """A stand-in for ``Live`` that always answers the same value."""

    def __init__(self, value: T) -> None:
        self.value = value

    def current(self) -> T:
        return self.value


@dataclass
class Snapshot:
    """The index and gazetteer current when a batch starts, used for every row of it.
    ``svc`` is a view of the services whose ``locator`` and ``geocoder`` answer these two,
    so the lookup functions that take services see the same picture."""

    svc: Services
    index: CityIndex
    gazetteer: Gazetteer

    @classmethod
    def take(cls, svc: Services) -> Snapshot:
        index, gazetteer = svc.locator.current(), svc.geocoder.current()
        pinned = dataclasses.replace(svc)
        # (the ignore below: a fixed stand-in for the live index)
        pinned.locator = _Fixed(index)  # type: ignore[assignment]
        # (the ignore below: a fixed stand-in for the live gazetteer)
        pinned.geocoder = _Fixed(gazetteer)  # type: ignore[assignment]
        return cls(pinned, index, gazetteer)

    def row_of_id(self, unit_id: int | None) -> int:
        """The index row of a stored unit id, or -1."""
        if unit_id is None:
            return -1
        ids = self.index.ids
        pos = int(np.searchsorted(ids, unit_id))  # ids ascend: the index reads by Unit.id
        return pos if pos < len(ids) and ids[pos] == unit_id else -1

    def entry(self, row: int) -> dict[str, Any] | None:
        return dict(self.index.entry(row)) if row >= 0 else None

    def unit_id(self, row: int) -> int | None:
        return int(self.index.ids[row]) if row >= 0 else None


# --- roster records ----------------------------------------------------------------------------


def roster_counts(statuses: Sequence[str]) -> dict[str, int]:
    return {"rows": len(statuses), **{s: statuses.count(s) for s in STATUSES}}


def roster_view(imp: RosterImport) -> dict[str, Any]:
    return {"id": imp.id, "kind": imp.kind, "filename": imp.filename, "counts": imp.counts,
            "created_at": imp.created_at.isoformat() if imp.created_at else None,
            "rows_note": "row numbers are spreadsheet rows: the header is row 1, the first "
                         "data row is row 2"}


def _roster(session: Session, roster_id: int, viewer: Principal) -> RosterImport:
    """The import, if the viewer may read it: city-wide viewers read every roster, others
    only those uploaded with their own token (the rows hold the raw personal data)."""
    imp = session.get(RosterImport, roster_id)
    if imp is None or not (viewer is None or viewer.city_wide
                           or (viewer.token_id is not None and imp.token_id == viewer.token_id)):
        raise NotFound(f"no roster import with id {roster_id}")
    return imp


def get_roster(svc: Services, roster_id: int, viewer: Principal
               ) -> dict[str, Any]:
    with svc.db.session() as session:
        return roster_view(_roster(session, roster_id, viewer))


def roster_rows(svc: Services, roster_id: int, status: str | None = None, limit: int = 100,
                offset: int = 0, *, viewer: Principal) -> dict[str, Any]:
    """The rows of one import in row order, optionally of one status; paged."""
    check_status(status)
    limit, offset = check_page(limit, offset)
    with svc.db.session() as session:
        _roster(session, roster_id, viewer)
        where = [RosterRow.import_id == roster_id]
        if status:
            where.append(RosterRow.status == status)
        total = session.scalar(select(func.count()).select_from(RosterRow).where(*where))
        rows = session.scalars(select(RosterRow).where(*where).order_by(RosterRow.row)
                               .limit(limit).offset(offset))
        items = [{"row": r.row, "status": r.status, "problems": r.problems, "data": r.data,
                  "member_id": r.member_id, "work_org_id": r.work_org_id} for r in rows]
    return {"items": items, "total": total or 0, "limit": limit, "offset": offset}


def check_status(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}, got {status!r}",
                           field="status")


def check_page(limit: int, offset: int) -> tuple[int, int]:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be 1..{MAX_PAGE}, got {limit}", field="limit")
    if offset < 0:
        raise InvalidInput(f"offset must be 0 or more, got {offset}", field="offset")
    return limit, offset


R = TypeVar("R")


def read_rows(
    path: Path, aliases: Mapping[str, Sequence[str]], required: Sequence[str],
    filename: str | None, read: Callable[[dict[str, Any], int], tuple[R | None, list[Problem]]],
    key: Callable[[R], str], key_field: str,
) -> tuple[Roster, list[R | None], list[list[Problem]]]:
    """Read a roster file and each row with ``read``; a row repeating an earlier row's ``key``
    is refused as a duplicate of it. Returns the roster, the inputs (None where refused) and
    each row's problems."""
    try:
        roster = read_roster(path, aliases, required, filename)
    except RosterError as exc:
        extra = {"row": exc.row} if exc.row is not None else {}
        raise InvalidInput(str(exc), field=exc.field or "file", **extra) from None
    inputs: list[R | None] = []
    problems: list[list[Problem]] = []
    for number, raw in roster.rows:
        inp, probs = read(roster.values(raw), number)
        inputs.append(inp)
        problems.append(probs)
    for i, first in duplicates([key(x) if x is not None else None for x in inputs]):
        inputs[i] = None
        problems[i].append(Problem(
            "error", "duplicate", f"duplicate of row {roster.rows[first][0]} (same {key_field})",
            row=roster.rows[i][0], field=key_field))
    return roster, inputs, problems


def duplicates(keys: Sequence[str | None]) -> Iterator[tuple[int, int]]:
    """(position, position of its first occurrence) for every repeated non-None key."""
    first: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key is None:
            continue
        if key in first:
            yield i, first[key]
        else:
            first[key] = i
