"""``GET /vendor/<path>``: browser assets installed by ``make install`` (gridsvc.maps.assets).

Only the installed package files (``node_modules/``) and the files derived from them
(``derived/``) are served; the versions are pinned, so browsers may cache them for a day.
"""

from __future__ import annotations

from flask import Blueprint, abort, send_from_directory
from flask.typing import ResponseReturnValue

from gridsvc.maps.assets import SERVED_FOLDERS, assets_dir
from gridsvc.web import current_services

bp = Blueprint("vendor", __name__)

CACHE_SECONDS = 24 * 3600


@bp.get("/vendor/<path:filename>")
def vendor_file(filename: str) -> ResponseReturnValue:
    top, _, rest = filename.partition("/")
    if top not in SERVED_FOLDERS or not rest:
        abort(404)
    folder = assets_dir(current_services().settings) / top  # rest cannot climb out of it
    return send_from_directory(folder, rest, max_age=CACHE_SECONDS)
