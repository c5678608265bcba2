"""A planner's edit of one unit: new geometry (wgs84) or attributes, checked and stored.

An edit is the stored unit as a ``BoundaryRecord`` with the changed fields, run through
``boundaries.import_records``: the same rules as a file import (overlaps with siblings, outside
the parent, children left outside, gaps) and the same preview of members and 党员中心户 whose
chain would change. ``check_edit`` is a dry run; ``save_edit`` stores it when the caller's
version still is the stored one, so two planners cannot overwrite each other silently. A
scoped ``viewer`` (a planner) may only check and save units of their subtree (``Forbidden``).

The version check runs just before the import, and the import's own update is guarded by the
unit's ``version`` column (SQLAlchemy ``version_id_col``), which fails a save whose row changed
after the import read it. A save that lands between the check and the import's read is not
caught: closing that gap needs the expected version checked inside ``import_records``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from gridsvc.access import Principal
from gridsvc.io.records import BoundaryRecord
from gridsvc.services import scope, tree
from gridsvc.services.boundaries import ImportOutcome, import_records
from gridsvc.services.context import Services
from gridsvc.services.errors import (
    InvalidInput,
    NotFound,
    ServiceError,
    ValidationFailed,
    VersionConflict,
)
from gridsvc.storage.models import Unit

# Attributes a planner may change besides the geometry: record field -> Python type.
EDITABLE = {"name": str, "leader": str, "phone": str, "households": int, "address": str}
GEOMETRY_TYPES = ("Point", "Polygon", "MultiPolygon")


class VersionMismatch(ServiceError):
    """The unit changed since the caller read it (another planner saved first)."""

    slug = "precondition-failed"
    title = "Precondition failed"
    status = 412


@dataclass
class EditOutcome:
    code: str
    version: int  # the stored version: after the save, or the current one for a check
    outcome: ImportOutcome
    unit: tree.UnitView | None = None  # the stored unit after a save, with geometry

    @property
    def ok(self) -> bool:
        return self.outcome.report.ok


def geometry_from_geojson(data: Any) -> BaseGeometry:
    """A GeoJSON geometry, or a Feature holding one, in wgs84 (RFC 7946) as a shapely shape."""
    if isinstance(data, dict) and data.get("type") == "Feature":
        data = data.get("geometry")
    if not isinstance(data, dict) or data.get("type") not in GEOMETRY_TYPES:
        raise InvalidInput(
            f"send a GeoJSON {', '.join(GEOMETRY_TYPES)} geometry (or a Feature with one), "
            "coordinates lon, lat in wgs84",
            field="geometry",
        )
    try:
        geom = shape(data)
    except OverflowError:  # an integer past what a float holds, e.g. 310 digits
        raise InvalidInput(f"the {data['type']} has a coordinate too large to be a number of "
                           "degrees", field="geometry") from None
    except (KeyError, TypeError, ValueError, IndexError, shapely.errors.ShapelyError) as exc:
        raise InvalidInput(f"the {data['type']} is not valid GeoJSON: {str(exc)[:200]}",
                           field="geometry") from None
    if geom.is_empty:
        raise InvalidInput(f"the {data['type']} has no coordinates", field="geometry")
    if not np.isfinite(shapely.get_coordinates(geom)).all():  # 1e400 reads as infinity
        raise InvalidInput(f"the {data['type']} has a coordinate that is not a finite number",
                           field="geometry")
    return geom


def stored_version(svc: Services, code: str) -> int:
    with svc.db.session() as session:
        version = session.scalar(select(Unit.version).where(Unit.code == code))
    if version is None:
        raise NotFound(f"no unit with code {code!r}", code=code)
    return version


def _record(view: tree.UnitView) -> BoundaryRecord:
    p = view.props
    return BoundaryRecord(
        row=1, code=p["code"], name=p["name"], level=p["level"], parent_code=p["parent_code"],
        geometry=view.geometry, leader=p["leader"], phone=p["phone"],
        households=p["households"], address=p["address"], service_area=view.service_area,
        properties=dict(p["properties"]), layer="edit",
    )


def _edited(svc: Services, code: str, geometry: BaseGeometry | None,
            attributes: dict[str, Any] | None,
            viewer: Principal) -> tuple[BoundaryRecord, int]:
    """The stored unit as a record with the new geometry and attributes, and its version;
    NotFound for an unknown unit, Forbidden for one outside the viewer's subtree."""
    if not scope.city_wide(viewer):
        with svc.db.session() as session:
            scope.writable_unit(session, viewer, code)
    view = tree.get_unit(svc, code, with_geometry=True, viewer=viewer).unit
    record = _record(view)
    if geometry is not None:
        record.geometry = geometry
    for name, value in (attributes or {}).items():
        kind = EDITABLE.get(name)
        if kind is None:
            raise InvalidInput(f"{name!r} cannot be edited here; editable: "
                               f"geometry, {', '.join(EDITABLE)}", field=name)
        if value is not None and not isinstance(value, kind):
            raise InvalidInput(f"{name} must be a {kind.__name__} or null", field=name)
        setattr(record, name, value)
    return record, view.props["version"]


def check_edit(svc: Services, code: str, *, geometry: BaseGeometry | None = None,
               attributes: dict[str, Any] | None = None,
               viewer: Principal) -> EditOutcome:
    """Validate the edit against the stored tree and preview who would move; stores nothing."""
    record, version = _edited(svc, code, geometry, attributes, viewer)
    outcome = import_records(svc, [record], dry_run=True, viewer=viewer)
    return EditOutcome(code, version, outcome)


def save_edit(svc: Services, code: str, expected_version: int, *,
              geometry: BaseGeometry | None = None,
              attributes: dict[str, Any] | None = None,
              viewer: Principal) -> EditOutcome:
    """Store the edit if the unit is still at ``expected_version`` and the edit validates.

    Raises ``VersionMismatch`` when another save came first and ``ValidationFailed`` (with the
    report) when a rule fails; in both cases nothing is stored.
    """
    record, version = _edited(svc, code, geometry, attributes, viewer)
    if version != expected_version:
        raise VersionMismatch(
            f"unit {code} is at version {version}, not {expected_version}: someone else "
            "saved it since you loaded it; reload it and redo the edit",
            code=code, version=version,
        )
    try:
        outcome = import_records(svc, [record], expected_versions={code: expected_version},
                                 viewer=viewer)
    except VersionConflict as exc:  # saved by someone else after the check above
        raise VersionMismatch(
            f"unit {code} was saved by someone else while this edit was stored; nothing of "
            "this edit was stored: reload it and redo the edit", code=code,
            version=exc.extra.get("version"),
        ) from None
    except StaleDataError:  # the row changed between the import's read and its update
        raise VersionMismatch(
            f"unit {code} was saved by someone else while this edit was stored; nothing of "
            "this edit was stored: reload it and redo the edit", code=code,
        ) from None
    if not outcome.report.ok:
        errors = len(outcome.report.errors)
        raise ValidationFailed(
            f"the edit of {code} breaks {errors} rule{'s' if errors != 1 else ''}; "
            "nothing was stored",
            code=code, report=outcome.report.as_dict(with_geometry=True),
        )
    unit = tree.get_unit(svc, code, with_geometry=True, viewer=viewer).unit
    return EditOutcome(code, unit.props["version"], outcome, unit)
