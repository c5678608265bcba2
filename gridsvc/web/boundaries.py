"""Boundary files over HTTP: validate or import an upload, validate the stored tree, export.

Uploads are multipart with a ``file`` part and optional form fields ``encoding``, ``crs``,
``repair``, ``map`` (a JSON object {schema_field: column}) and, for imports, ``dry_run``. The
file is saved under a temporary folder with its own name and suffix, read by the service layer
and removed. A Shapefile must be uploaded zipped together with its .dbf, .shx and .prj.

Who may: an import needs a token that may edit boundaries (admin, planner) and every feature
must lie in the token's subtree (403 naming the features otherwise, nothing stored). Checking
an upload stores nothing and needs a token that may read units (any feature outside the
subtree is 403 there too); validating the stored tree and exports read units and stay in the
token's subtree (its root by default, 404 for a unit outside).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Blueprint, Response, request, send_file, url_for

from gridsvc.access import Permission, Principal
from gridsvc.io.uploads import upload_folder
from gridsvc.services import boundaries
from gridsvc.services.boundaries import ImportOutcome
from gridsvc.services.errors import InvalidInput, ValidationFailed
from gridsvc.web import current_services
from gridsvc.web.audit import checks_only
from gridsvc.web.auth import require
from gridsvc.web.geojson import GEOJSON, json_response
from gridsvc.web.params import bool_arg, json_object_field, text_arg

bp = Blueprint("boundaries", __name__, url_prefix="/api/v1/boundaries")

UPLOAD_SUFFIXES = (".geojson", ".json", ".gpkg", ".zip")
EXPORTS = {  # format -> (suffix, media type)
    "geojson": (".geojson", GEOJSON),
    "gpkg": (".gpkg", "application/geopackage+sqlite3"),
    "shp": (".zip", "application/zip"),
}


def _safe_name(filename: str) -> str:
    """The upload's own file name without folders or odd characters (Chinese is kept)."""
    name = Path(filename.replace("\\", "/")).name
    return re.sub(r"[^\w.\- ]", "_", name).strip(" .") or "upload"


@contextmanager
def _saved_upload() -> Iterator[Path]:
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidInput("send the boundary file as the multipart field 'file'", field="file")
    name = _safe_name(upload.filename)
    suffix = Path(name).suffix.lower()
    if suffix in (".shp", ".dbf", ".shx", ".prj", ".cpg"):
        raise InvalidInput(
            f"{upload.filename!r}: a Shapefile cannot be uploaded alone; zip the .shp with its "
            ".dbf, .shx, .prj (and .cpg) files and upload the .zip",
            field="file",
        )
    if suffix not in UPLOAD_SUFFIXES:
        raise InvalidInput(
            f"{upload.filename!r}: upload a {', '.join(UPLOAD_SUFFIXES)} file "
            "(a Shapefile zipped with its companion files)",
            field="file",
        )
    with upload_folder(current_services().settings.uploads, "upload") as folder:
        path = folder / name
        upload.save(path)
        yield path


def _run_import(dry_run: bool, viewer: Principal) -> ImportOutcome:
    form = request.form
    with _saved_upload() as path:
        try:
            return boundaries.import_file(
                current_services(),
                path,
                encoding=text_arg("encoding", form),
                field_map=json_object_field("map", form),
                crs=text_arg("crs", form),
                repair=bool_arg("repair", args=form),
                dry_run=dry_run,
                viewer=viewer,
            )
        except InvalidInput as exc:  # name the file as uploaded, not its temporary folder
            detail = exc.detail.replace(f"{path.parent}/", "")
            raise InvalidInput(detail, **exc.extra) from None


def _with_geometry() -> bool:
    """``geometry=1`` adds each problem's shape (WKT) to the report."""
    return bool_arg("geometry") or bool_arg("geometry", args=request.form)


@bp.post("/validate")
@checks_only
def validate_upload() -> Response:
    """Validate an uploaded file against the stored tree; never stores."""
    outcome = _run_import(dry_run=True, viewer=require(Permission.READ_UNITS))
    return json_response(outcome.report.as_dict(_with_geometry()))


@bp.post("/import")
def import_upload() -> Response:
    viewer = require(Permission.EDIT_BOUNDARIES)
    dry_run = bool_arg("dry_run", args=request.form) or bool_arg("dry_run")
    outcome = _run_import(dry_run, viewer)
    body = outcome.as_dict(_with_geometry())
    if not outcome.report.ok:
        errors = len(outcome.report.errors)
        raise ValidationFailed(
            f"the file has {errors} error{'s' if errors != 1 else ''}; nothing was stored",
            report=body["report"],
        )
    changed = outcome.stored and (outcome.created or outcome.updated)
    return json_response(body, status=201 if changed else 200)


@bp.get("/validate")
def validate_stored() -> Response:
    """Validate the stored tree, or the subtree under ``?unit=CODE``."""
    viewer = require(Permission.READ_UNITS)
    report = boundaries.validate_stored(current_services(), text_arg("unit"), viewer=viewer)
    return json_response({**report.as_dict(_with_geometry()),
                          "map": url_for("maps.validation_page", unit=text_arg("unit"))})


@bp.get("/export")
def export() -> Response:
    """The tree or the subtree under ``?unit=CODE`` as geojson, gpkg or zipped shp."""
    viewer = require(Permission.READ_UNITS)
    fmt = (text_arg("format") or "geojson").lower()
    if fmt not in EXPORTS:
        raise InvalidInput(f"format must be one of {', '.join(EXPORTS)}, got {fmt!r}",
                           field="format")
    suffix, media = EXPORTS[fmt]
    unit = text_arg("unit")
    name = f"gridsvc-{unit or viewer.scope_code or 'tree'}{suffix}"
    with upload_folder(current_services().settings.uploads, "export") as folder:
        path = folder / name
        boundaries.export_tree(current_services(), path, fmt, root=unit, viewer=viewer)
        data = io.BytesIO(path.read_bytes())
    return send_file(data, mimetype=media, as_attachment=True, download_name=name)
