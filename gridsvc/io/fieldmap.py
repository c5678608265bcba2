"""Which file column holds which interchange-schema field.

Columns are recognised by name, ignoring case, spaces, ``_`` and ``-``, including the
10-byte cuts a DBF makes of longer names (``parent_code`` -> ``parent_cod``, 网格编码 in UTF-8
-> 网格编). An explicit field map ``{schema_field: column}`` wins over recognition. Columns that
map to no field are the feature's free properties.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SCHEMA_FIELDS = (
    "code", "name", "level", "parent_code", "leader", "phone", "households", "address",
    "service_area",
)
REQUIRED_FIELDS = ("code", "name", "level")

# Recognised column names per field, best first (the schema name itself always first).
ALIASES: dict[str, tuple[str, ...]] = {
    "code": ("code", "编码", "代码", "网格编码", "单位编码"),
    "name": ("name", "名称", "名字", "网格名称", "单位名称"),
    "level": ("level", "级别", "层级", "等级"),
    "parent_code": ("parent_code", "上级编码", "父级编码", "上级代码"),
    "leader": ("leader", "负责人", "书记", "组长", "楼栋长"),
    "phone": ("phone", "电话", "联系电话", "手机", "手机号"),
    "households": ("households", "户数", "住户数"),
    "address": ("address", "地址", "标准地址"),
    "service_area": ("service_area",),
}

# Column names the Shapefile writer uses where the schema name is longer than 10 characters.
SHAPEFILE_COLUMNS = {"parent_code": "parent_cod"}

DBF_NAME_BYTES = 10

# Layer-name suffix of household service areas, which a Shapefile cannot hold as WKT text (a DBF
# text field has 254 bytes): ``level5_household_service_area.shp`` with a code column.
SERVICE_AREA_LAYER = "_service_area"


def normal(name: str) -> str:
    """A column name compared ignoring case, spaces, underscores and hyphens."""
    return re.sub(r"[\s_\-]", "", name).casefold()


def _forms(alias: str) -> set[str]:
    """The alias and its DBF cuts to 10 bytes in UTF-8 and GB18030, normalised."""
    forms = {normal(alias)}
    for codec in ("utf-8", "gb18030"):
        cut = alias.encode(codec)[:DBF_NAME_BYTES].decode(codec, errors="ignore")
        forms.add(normal(cut))
    return forms


@dataclass
class ColumnMatch:
    """The outcome of matching one layer's columns."""

    columns: dict[str, str] = field(default_factory=dict)  # schema field -> file column
    missing: list[str] = field(default_factory=list)  # required fields with no column
    unknown_mapped: dict[str, str] = field(default_factory=dict)  # field -> absent column
    free: list[str] = field(default_factory=list)  # columns that become free properties


def check_field_map(field_map: dict[str, str] | None) -> dict[str, str]:
    """The field map with its keys checked; ``ValueError`` names an unknown schema field."""
    field_map = dict(field_map or {})
    unknown = sorted(set(field_map) - set(SCHEMA_FIELDS))
    if unknown:
        raise ValueError(f"field map names unknown schema fields {unknown}; "
                         f"the fields are {', '.join(SCHEMA_FIELDS)}")
    return field_map


def match_columns(
    columns: list[str],
    field_map: dict[str, str] | None = None,
    required: tuple[str, ...] = REQUIRED_FIELDS,
) -> ColumnMatch:
    """Assign a layer's columns to schema fields: the field map first, then recognised names.

    A field the field map names is taken from that column only: if the layer lacks it, the
    field is listed in ``unknown_mapped`` (and in ``missing`` when ``required``)."""
    match = ColumnMatch()
    used: set[str] = set()
    for schema_field, wanted in (field_map or {}).items():
        found = next((c for c in columns if c == wanted), None) or next(
            (c for c in columns if normal(c) == normal(wanted)), None)
        if found is None:
            match.unknown_mapped[schema_field] = wanted
        else:
            match.columns[schema_field] = found
            used.add(found)
    for schema_field, aliases in ALIASES.items():
        if schema_field in match.columns or schema_field in match.unknown_mapped:
            continue
        for alias in aliases:
            forms = _forms(alias)
            found = next((c for c in columns if c not in used and normal(c) in forms), None)
            if found is not None:
                match.columns[schema_field] = found
                used.add(found)
                break
    match.missing = [f for f in required if f not in match.columns]
    match.free = [c for c in columns if c not in used]
    return match
