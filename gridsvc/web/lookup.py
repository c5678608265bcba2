""""Which grid do I report to" over HTTP, and the staff-only gazetteer import.

``GET /api/v1/lookup`` takes either ``lon``, ``lat`` and ``coordsys`` or ``address`` (with an
optional ``district``) and answers the chain, household, point and match
(``services/lookup.py``). ``POST /api/v1/lookup/batch`` takes a JSON list of such items (at most
``GRIDSVC_BATCH_LIMIT``) and answers one entry per item; ``?compact=1`` gives chains as codes
and describes each unit once in ``units``; ``?format=columns`` answers parallel arrays instead
(the fastest form for big point batches). Which contacts an answer carries depends on the
caller (``services/contacts.py``): the public's batch none. Bodies are read and written with
orjson (which refuses lone surrogates) and the answers arrive from the service already
encoded, so the hot paths skip Flask's JSON.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from flask import Blueprint, Response, g, request

from gridsvc.access import Permission
from gridsvc.io.uploads import upload_folder
from gridsvc.services import lookup
from gridsvc.services import lookup_batch as batch
from gridsvc.services.contacts import Contacts
from gridsvc.services.errors import InvalidInput
from gridsvc.services.gazetteer import import_gazetteer
from gridsvc.web import current_services
from gridsvc.web.auth import caller_or_public, require
from gridsvc.web.boundaries import _safe_name
from gridsvc.web.geojson import JSON, fast_json_response, json_bytes, json_response
from gridsvc.web.params import bool_arg, text_arg

bp = Blueprint("lookup", __name__, url_prefix="/api/v1")

GAZETTEER_SUFFIXES = (".csv", ".geojson", ".json")


@bp.get("/lookup")
def lookup_one() -> Response:
    svc = current_services()
    args = request.args
    address = text_arg("address", args)
    lon, lat = text_arg("lon", args), text_arg("lat", args)
    if address is not None and (lon is not None or lat is not None):
        raise InvalidInput("give either lon, lat and coordsys or address, not both",
                           field="address")
    contacts = Contacts.for_caller(caller_or_public(), batch=False)
    if address is not None:
        return fast_json_response(lookup.lookup_address(svc, address, text_arg("district",
                                                                                args), contacts))
    if lon is None and lat is None:
        raise InvalidInput("give lon, lat and coordsys (wgs84, gcj02, bd09 or cgcs2000), or "
                           "address", field="lon")
    return json_bytes(lookup.locate_point(svc, lon, lat, text_arg("coordsys", args),
                                          contacts).to_json())


BATCH_FORMATS = ("results", "columns")


@bp.post("/lookup/batch")
def lookup_batch() -> Response:
    form = text_arg("format") or "results"
    if form not in BATCH_FORMATS:
        raise InvalidInput(f"format must be results or columns, got {form!r}", field="format")
    items = batch_items()
    svc = current_services()
    contacts = Contacts.for_caller(caller_or_public(), batch=True)
    if form == "columns":
        return json_bytes(batch.lookup_batch_columns(svc, items, contacts).to_json())
    answer = batch.lookup_batch(svc, items, compact=bool_arg("compact"), contacts=contacts)
    if answer.count <= batch.CHUNK_ITEMS:
        return json_bytes(answer.to_json())
    # streamed (chunked transfer): the body is written a chunk of items at a time
    return Response(answer.chunks(), mimetype=JSON)


def batch_items() -> object:
    """The batch body, decoded once per request (the rate limit counts its items first)."""
    if "batch_items" not in g:
        try:
            g.batch_items = orjson.loads(request.get_data())
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"the body is not valid JSON: {exc}", field="body") from None
    return g.batch_items


@bp.post("/gazetteer/import")
def gazetteer_import() -> Response:
    require(Permission.EDIT_GAZETTEER)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidInput("send the gazetteer as the multipart field 'file' (.csv or "
                           ".geojson)", field="file")
    name = _safe_name(upload.filename)
    if Path(name).suffix.lower() not in GAZETTEER_SUFFIXES:
        raise InvalidInput(f"{upload.filename!r}: upload a .csv or .geojson gazetteer",
                           field="file")
    with upload_folder(current_services().settings.uploads, "gazetteer") as folder:
        path = folder / name
        upload.save(path)
        result = import_gazetteer(current_services(), path, source=f"file:{name}")
    return json_response(result.as_dict())
