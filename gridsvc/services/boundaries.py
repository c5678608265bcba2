"""Boundary import, validation of stored data, and export.

An import is one transaction: every feature is validated against the file and the stored tree
first; with any error nothing is stored. Otherwise units are upserted by code, parents before
children: a unit whose fields and geometry are unchanged is left alone (no new version), so
re-importing the same file changes nothing. Units missing from the file are kept: a file may
hold one district's subtree. A unit's ``path`` follows its parent when the parent changes.

A ``viewer`` (``gridsvc.access``; None: the CLI, everything) keeps an import to their subtree:
every feature must land in it (and, when it exists, already lie in it), or the whole file is
refused with ``Forbidden`` naming those features, before validation and with nothing stored;
a new top-level unit needs a city-wide viewer. Validation of the stored tree and exports start
at the viewer's scope root and never leave the subtree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import shapely
from geoalchemy2.shape import from_shape
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from gridsvc.access import Principal
from gridsvc.hierarchy import Level
from gridsvc.io.boundaries import (
    BoundaryFileError,
    ZipLimitExceeded,
    ZipLimits,
    read_boundaries,
    write_records,
)
from gridsvc.io.records import BoundaryRecord
from gridsvc.services import reassign, scope
from gridsvc.services.context import Services
from gridsvc.services.errors import ArchiveTooLarge, Forbidden, InvalidInput, VersionConflict
from gridsvc.services.locator import city_index_in
from gridsvc.services.tree import subtree
from gridsvc.settings import Settings
from gridsvc.storage import units as q
from gridsvc.storage.models import SRID, Member, Unit
from gridsvc.validation.report import Problem, Report
from gridsvc.validation.rules import ExistingUnit, validate_records
from gridsvc.validation.text_rules import first_bad_text, limits_of, text_problem

Progress = Callable[[str, int, int], None]
BOUNDARIES = q.BOUNDARIES


def _quiet(_step: str, _done: int, _total: int) -> None:
    pass


@dataclass
class ImportOutcome:
    report: Report
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stored: bool = False
    dry_run: bool = False
    revision: int | None = None
    moves: list[reassign.Move] = field(default_factory=list)

    def as_dict(self, with_geometry: bool = False) -> dict[str, Any]:
        return {
            "stored": self.stored,
            "dry_run": self.dry_run,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "revision": self.revision,
            "moves": [m.as_dict() for m in self.moves],
            "report": self.report.as_dict(with_geometry),
        }


# A record's text fields and the unit column each is stored in (its length is the limit).
RECORD_COLUMNS = {"code": "code", "parent_code": "code", "name": "name", "leader": "leader_name",
                  "phone": "leader_phone", "address": "address"}


def _code_problems(records: Sequence[BoundaryRecord]) -> list[Problem]:
    """Codes become path segments: refuse the characters that would break them; and every
    text obeys ``gridsvc.validation.text_rules`` (rule ``bad-text``: valid Unicode, no control
    characters, at most the column's length; free properties as free text)."""
    problems = [
        Problem("error", "bad-value", f"code {r.code!r} may not contain '/' or spaces",
                code=r.code, row=r.row, layer=r.layer, field="code")
        for r in records
        if r.code and ("/" in r.code or any(ch.isspace() for ch in r.code))
    ]
    limits = limits_of(Unit)
    for r in records:
        found = [(f, reason) for f, column in RECORD_COLUMNS.items()
                 if isinstance(value := getattr(r, f), str)
                 and (reason := text_problem(value, limits[column]))]
        if r.properties and (bad := first_bad_text(r.properties)):
            found.append((f"properties.{bad[0]}", bad[1]))
        code = r.code if isinstance(r.code, str) and not text_problem(r.code, None) else None
        problems.extend(Problem("error", "bad-text", f"{field} {reason}", code=code, row=r.row,
                                layer=r.layer, field=field) for field, reason in found)
    return problems


def _existing_context(
    session: Session, records: Sequence[BoundaryRecord]
) -> dict[str, ExistingUnit]:
    """Stored units the file refers to: the file's own codes, their parents, and the stored
    children of both (siblings and children for the overlap, gap and containment rules)."""
    codes = {r.code for r in records if r.code}
    parents = {r.parent_code for r in records if r.parent_code}
    stored = q.units_by_codes(session, codes | parents)
    units = list(stored.values()) + q.children_of_ids(session, [u.id for u in stored.values()])
    unique = {u.code: u for u in units}
    ordered = list(unique.values())
    geoms = q.geometries(ordered)
    out: dict[str, ExistingUnit] = {}
    for unit, geom in zip(ordered, geoms, strict=True):
        path_codes = q.codes_in_path(unit.path)
        parent_code = path_codes[-2] if len(path_codes) > 1 else None
        out[unit.code] = ExistingUnit(
            code=unit.code, level=unit.level, parent_code=parent_code, geometry=geom,
            name=unit.name,
        )
    return out


def _outside_scope(session: Session, records: Sequence[BoundaryRecord],
                   viewer: Principal) -> list[BoundaryRecord]:
    """Records that would land outside the viewer's subtree, or that move a stored unit from
    outside it. A record whose parent is unknown is left to validation (it stores nothing)."""
    in_file = {r.code: r for r in records if r.code}
    stored = q.units_by_codes(
        session, set(in_file) | {r.parent_code for r in records if r.parent_code})
    paths: dict[str, str | None] = {}

    def new_path(code: str, seen: frozenset[str] = frozenset()) -> str | None:
        if code not in paths:
            rec = in_file.get(code)
            if rec is None:
                paths[code] = stored[code].path if code in stored else None
            elif not rec.parent_code:
                paths[code] = q.path_for(None, code)
            elif rec.parent_code in seen:  # a cycle in the file: validation reports it
                return None
            else:
                parent = new_path(rec.parent_code, seen | {code})
                paths[code] = None if parent is None else q.path_for(parent, code)
        return paths[code]

    outside = []
    for rec in records:
        if not rec.code:
            continue
        path = new_path(rec.code)
        old = stored.get(rec.code)
        if ((path is not None and not viewer.covers(path))
                or (old is not None and not viewer.covers(old.path))):
            outside.append(rec)
    return outside


def _check_scope(session: Session, records: Sequence[BoundaryRecord],
                 viewer: Principal) -> None:
    if scope.city_wide(viewer):
        return
    assert viewer is not None
    outside = _outside_scope(session, records, viewer)
    if outside:
        named = ", ".join(f"row {r.row} {r.code}" for r in outside[:20])
        more = f" and {len(outside) - 20} more" if len(outside) > 20 else ""
        # One message for both causes (its parent is outside, or its code belongs to a unit
        # outside), so the answer does not tell whether a code exists outside the subtree.
        raise Forbidden(
            f"{len(outside)} feature{'s' if len(outside) != 1 else ''} of the file cannot be "
            f"stored by this token: each would lie outside your subtree "
            f"({viewer.scope_label}) or uses a code this token cannot use: {named}{more}; "
            "nothing was stored",
            scope=viewer.scope_code,
            features=[{"row": r.row, "code": r.code, "layer": r.layer} for r in outside],
        )


def _clip_to_scope(svc: Services, report: Report, viewer: Principal) -> None:
    """A scoped viewer's report draws nothing outside their subtree: each problem's shape
    (an overlap with a neighbour, a gap between siblings) is cut to the scope unit's stored
    area and its location dropped when outside it. Problems still name the other unit
    (``other_code``) and keep their area, so a planner knows what the edit runs into without
    receiving the exact boundary of a unit they may not read."""
    if scope.city_wide(viewer) or not report.problems:
        return
    assert viewer is not None
    area = None
    if viewer.scope_code:
        with svc.db.session() as session:
            unit = session.scalar(select(Unit).where(Unit.code == viewer.scope_code))
            area = q.geometries([unit])[0] if unit is not None else None
    for p in report.problems:
        if p.geometry_wkt:
            inside = (shapely.intersection(shapely.from_wkt(p.geometry_wkt), area)
                      if area is not None else None)
            p.geometry_wkt = (inside.wkt if inside is not None and not inside.is_empty
                              else None)
        if p.location and (area is None or not area.covers(shapely.Point(p.location))):
            p.location = None


def _values(rec: BoundaryRecord, level: int) -> dict[str, Any]:
    return {
        "name": rec.name,
        "level": level,
        "leader_name": rec.leader or None,
        "leader_phone": rec.phone or None,
        "households": rec.households,
        "address": rec.address or None,
        "properties": rec.properties or {},
    }


def _same_geometry(stored: Any, new: Any) -> bool:
    """Same vertices, whatever the ring orientation and start vertex (a Shapefile writer
    turns outer rings clockwise, so its export must re-import as unchanged)."""
    if stored is None or new is None:
        return stored is None and new is None
    old = shapely.from_wkb(q.wkb_bytes(stored))
    return bool(shapely.equals_exact(shapely.normalize(old), shapely.normalize(new),
                                     tolerance=1e-10))


def _as_multipolygon(geom: Any) -> Any:
    """The service-area column holds MULTIPOLYGONs; a file's Polygon is promoted."""
    if geom is not None and geom.geom_type == "Polygon":
        return shapely.MultiPolygon([geom])
    return geom


def _store(
    session: Session, svc: Services, records: Sequence[BoundaryRecord], progress: Progress,
    expected_versions: Mapping[str, int] | None = None,
) -> tuple[int, int, int]:
    """Upsert records level by level; returns (created, updated, unchanged). Units named in
    ``expected_versions`` must still be at that version, read inside this transaction."""
    codes = {r.code for r in records} | {r.parent_code for r in records if r.parent_code}
    known = q.units_by_codes(session, codes)
    for code, version in (expected_versions or {}).items():
        found = known.get(code)
        if found is None or found.version != version:
            raise VersionConflict(
                f"unit {code} is at version {found.version if found else 'none'}, not "
                f"{version}: someone else saved it first", code=code,
                version=found.version if found else None)
    paths = {code: (u.id, u.path) for code, u in known.items()}
    created = updated = unchanged = 0
    total = len(records)
    def level_of(r: BoundaryRecord) -> int:
        return cast(Level, svc.hierarchy.resolve(r.level)).level  # validated: a known level

    for level in sorted({level_of(r) for r in records}):
        batch = [r for r in records if level_of(r) == level]
        new_rows: list[dict[str, Any]] = []
        for rec in batch:
            parent_id, parent_path = paths[rec.parent_code] if rec.parent_code else (None, None)
            path = q.path_for(parent_path, rec.code)
            values = _values(rec, level) | {"parent_id": parent_id, "path": path}
            geom = from_shape(rec.geometry, srid=SRID)
            service_area = _as_multipolygon(rec.service_area)
            area = None if service_area is None else from_shape(service_area, srid=SRID)
            unit = known.get(rec.code)
            if unit is None:
                new_rows.append(values | {"code": rec.code, "geom": geom, "service_area": area,
                                          "version": 1})
                continue
            changed = {k: v for k, v in values.items() if getattr(unit, k) != v}
            if not _same_geometry(unit.geom, rec.geometry):
                changed["geom"] = geom
            if not _same_geometry(unit.service_area, service_area):
                changed["service_area"] = area
            if changed:
                if "path" in changed:  # moved to another parent: its subtree follows
                    _move_subtree(session, unit.path, path)
                for key, value in changed.items():
                    setattr(unit, key, value)
                updated += 1
            else:
                unchanged += 1
            paths[rec.code] = (unit.id, path)
        session.flush()
        if new_rows:
            result = session.execute(
                insert(Unit).returning(Unit.id, Unit.code, Unit.path), new_rows
            )
            for unit_id, code, path in result:
                paths[code] = (unit_id, path)
            created += len(new_rows)
        progress("store", created + updated + unchanged, total)
    return created, updated, unchanged


def _move_subtree(session: Session, old_path: str, new_path: str) -> None:
    session.execute(
        update(Unit)
        .where(q.subtree_filter(old_path), Unit.path != old_path)
        .values(path=new_path + func.substr(Unit.path, len(old_path) + 1))
        .execution_options(synchronize_session=False)
    )


def import_records(
    svc: Services,
    records: Sequence[BoundaryRecord],
    *,
    report: Report | None = None,
    repair: bool = False,
    dry_run: bool = False,
    progress: Progress = _quiet,
    expected_versions: Mapping[str, int] | None = None,
    viewer: Principal,
) -> ImportOutcome:
    """Validate records against the stored tree and, if clean, store them in one transaction.

    ``expected_versions`` (code -> version) makes the store refuse with ``VersionConflict``
    when one of those units was saved by someone else in the meantime (optimistic locking).
    A scoped ``viewer`` gets ``Forbidden`` when a record lies outside their subtree.
    """
    report = report or Report()
    for problem in _code_problems(records):
        report.add(problem)
    with svc.db.session() as session:
        _check_scope(session, records, viewer)
        progress("load", 0, 1)
        existing = _existing_context(session, records)
    progress("validate", 0, len(records))
    s = svc.settings
    result = validate_records(
        list(records), svc.hierarchy, existing=existing, repair=repair,
        contain_tolerance_m=s.contain_tolerance_m, overlap_tolerance_m2=s.overlap_tolerance_m2,
        gap_min_m2=s.gap_min_m2,
    )
    report.problems.extend(result.report.problems)
    _clip_to_scope(svc, report, viewer)
    report.features = len(records)
    report.repaired += result.report.repaired
    outcome = ImportOutcome(report, dry_run=dry_run)
    if not report.ok:
        return outcome
    with svc.db.sessions() as session:
        transaction = session.begin()
        try:
            _store_and_reassign(session, svc, result.records, outcome, progress,
                                expected_versions)
        except BaseException:
            transaction.rollback()
            raise
        if dry_run:
            transaction.rollback()  # a preview: what would be stored and who would move
        else:
            transaction.commit()
    outcome.stored = not dry_run
    return outcome


def _has_dependents(session: Session, svc: Services) -> bool:
    """Whether anything hangs on the boundaries: members with a home point, or households."""
    member = session.scalar(select(Member.id).where(Member.lon.is_not(None)).limit(1))
    level = svc.hierarchy.household.level if svc.hierarchy.household else None
    household = level and session.scalar(select(Unit.id).where(Unit.level == level).limit(1))
    return member is not None or bool(household)


def _store_and_reassign(session: Session, svc: Services, records: Sequence[BoundaryRecord],
                        outcome: ImportOutcome, progress: Progress,
                        expected_versions: Mapping[str, int] | None = None) -> None:
    before = reassign.snapshot(session, svc.hierarchy) if _has_dependents(session, svc) else None
    created, updated, unchanged = _store(session, svc, records, progress, expected_versions)
    outcome.created, outcome.updated, outcome.unchanged = created, updated, unchanged
    if not (created or updated):
        return
    outcome.revision = q.bump_revision(session, BOUNDARIES)
    if before is None:
        return
    progress("reassign", 0, 1)
    after = city_index_in(session, svc.hierarchy)
    members, updates = reassign.member_moves(session, before, after, svc.settings)
    outcome.moves = members + reassign.household_moves(before, after)
    reassign.apply_member_updates(session, updates, outcome.moves, outcome.revision)
    progress("reassign", 1, 1)


def zip_limits(settings: Settings) -> ZipLimits:
    """How far an uploaded zip may unpack (GRIDSVC_ZIP_MAX_MB, _RATIO, _ENTRIES)."""
    return ZipLimits(max_bytes=settings.zip_max_mb * 1024 * 1024,
                     max_ratio=settings.zip_max_ratio, max_entries=settings.zip_max_entries)


def import_file(
    svc: Services,
    path: Path,
    *,
    encoding: str | None = None,
    field_map: dict[str, str] | None = None,
    crs: str | None = None,
    repair: bool = False,
    dry_run: bool = False,
    progress: Progress = _quiet,
    viewer: Principal,
) -> ImportOutcome:
    """Read a boundary file (GeoJSON, GeoPackage, Shapefile or zip) and import it."""
    progress("read", 0, 1)
    try:
        read = read_boundaries(Path(path), encoding=encoding, field_map=field_map, crs=crs,
                               zip_limits=zip_limits(svc.settings))
    except ZipLimitExceeded as exc:
        extra = {"entry": exc.entry} if exc.entry is not None else {}
        raise ArchiveTooLarge(str(exc), field="file", setting=exc.setting, limit=exc.limit,
                              **extra) from exc
    except BoundaryFileError as exc:
        raise InvalidInput(str(exc), field="file") from exc
    report = Report(problems=list(read.problems))
    return import_records(svc, read.records, report=report, repair=repair, dry_run=dry_run,
                          progress=progress, viewer=viewer)


def scoped_root(svc: Services, root: str | None, viewer: Principal) -> str | None:
    """The unit a read of the stored tree starts from: ``root`` (404 outside the viewer's
    subtree), else the viewer's scope root (None: the whole tree)."""
    if root is None and scope.city_wide(viewer):
        return None
    with svc.db.session() as session:
        return scope.root_code(session, viewer, root)


def stored_records(svc: Services, root: str | None = None,
                   *, viewer: Principal) -> list[BoundaryRecord]:
    """The stored tree (or a subtree) as interchange records, parents first."""
    views = subtree(svc, scoped_root(svc, root, viewer), with_geometry=True, viewer=viewer)
    return [
        BoundaryRecord(
            row=i, code=v.props["code"], name=v.props["name"], level=v.props["level"],
            parent_code=v.props["parent_code"], geometry=v.geometry, leader=v.props["leader"],
            phone=v.props["phone"], households=v.props["households"],
            address=v.props["address"], service_area=v.service_area,
            properties=dict(v.props["properties"]),
        )
        for i, v in enumerate(views, start=1)
    ]


def validate_stored(svc: Services, root: str | None = None,
                    *, viewer: Principal) -> Report:
    """Run every validation rule over the stored tree (or a subtree; for a scoped viewer their
    subtree at most)."""
    root = scoped_root(svc, root, viewer)
    records = stored_records(svc, root, viewer=viewer)
    existing: dict[str, ExistingUnit] = {}
    if root is not None and records and records[0].parent_code:
        with svc.db.session() as session:
            existing = _existing_context(session, records[:1])
    s = svc.settings
    result = validate_records(
        records, svc.hierarchy, existing=existing,
        contain_tolerance_m=s.contain_tolerance_m, overlap_tolerance_m2=s.overlap_tolerance_m2,
        gap_min_m2=s.gap_min_m2,
    )
    result.report.features = len(records)
    return result.report


def export_tree(svc: Services, path: Path, fmt: str | None = None, root: str | None = None,
                *, viewer: Principal) -> int:
    """Write the tree or a subtree (the viewer's at most) to GeoJSON, GeoPackage or zipped
    Shapefile; returns the count."""
    records = stored_records(svc, root, viewer=viewer)
    names = {lv.level: f"level{lv.level}_{lv.key}" for lv in svc.hierarchy.levels}
    write_records(records, Path(path), fmt, layer_names=names)
    return len(records)
