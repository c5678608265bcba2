"""The member distribution map: members as clusters and as a heat map.

- Public (``detail=False``): counts per micro-grid only (``counts`` view of the layer API: the
  micro-grid's code, name and number of assigned members at a point on its polygon; below zoom
  15 the counts of grids or communities). Never a member's name, phone or home.
- Detailed (``detail=True``, staff only; the web layer checks the token): every assigned
  member's home point with name, phone and building, inlined into the page (at most
  ``DETAIL_MAX`` members: choose a smaller unit for more).
"""

from __future__ import annotations

from typing import Any

import folium
from sqlalchemy import select

from gridsvc.maps import elements
from gridsvc.maps.coverage import API, LayerSource, should_inline
from gridsvc.maps.layers import LayerStore
from gridsvc.services.coverage import ASSIGNED
from gridsvc.services.errors import InvalidInput
from gridsvc.storage import units as q
from gridsvc.storage.models import Member, Unit

DETAIL_MAX = 50_000
CLUSTERS = "聚合 clusters"
HEAT = "热力 heat map"


def member_points(store: LayerStore, unit: str | None) -> dict[str, Any]:
    """Assigned members' homes under ``unit`` as GeoJSON points (personal data: staff only)."""
    with store.svc.db.session() as session:
        stmt = (select(Member.name, Member.phone, Member.lon, Member.lat, Unit.code)
                .join(Unit, Unit.id == Member.building_id)
                .where(Member.status == ASSIGNED, Member.lon.is_not(None),
                       Member.lat.is_not(None)))
        if unit is not None:
            path = session.scalar(select(Unit.path).where(Unit.code == unit))
            stmt = stmt.where(q.subtree_filter(path or "/"))
        rows = session.execute(stmt.order_by(Member.id).limit(DETAIL_MAX + 1)).all()
    if len(rows) > DETAIL_MAX:
        raise InvalidInput(f"more than {DETAIL_MAX:,} members live under {unit or 'the tree'}; "
                           "the detailed map shows at most that many: choose a smaller unit",
                           field="unit")
    features = [{"type": "Feature",
                 "geometry": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]},
                 "properties": {"name": name, "phone": phone, "building": code, "members": 1,
                                "label": f"{name} {phone} {code}"}}
                for name, phone, lon, lat, code in rows
                if lon is not None and lat is not None]  # as selected; tells the type checker
    return {"type": "FeatureCollection", "features": features}


def distribution_map(store: LayerStore, unit: str | None = None, *, detail: bool = False,
                     api: str | None = API, inline: bool | None = None) -> folium.Map:
    """Members under ``unit`` (the whole tree when None) as clusters and a heat map."""
    hierarchy = store.svc.hierarchy
    micro = hierarchy.micro_grid
    outline_level = hierarchy.get(max(micro.level - 1, 1))
    if unit is not None:
        store.unit_row(unit)  # NotFound for an unknown code
    if api is None:
        inline = True
    elif inline is None:
        inline = should_inline(store, unit, [micro])
    source = LayerSource(store, unit, inline, api)
    what = "党员分布 members (staff)" if detail else "党员分布 members per micro-grid"
    m = elements.page_map(store.svc.settings, store.bounds(unit), f"{what}: {unit or 'all'}")
    source.add(m, outline_level, f"{outline_level.name} {outline_level.key}",
               {"kind": "outline", "tooltip": ["name", "code"], "weight": 1,
                "color": "#636363"}, {"view": "names"})
    if detail:
        data = member_points(store, unit)
        elements.DataLayer(CLUSTERS, {"kind": "cluster"}, data=data).add_to(m)
        elements.DataLayer(HEAT, {"kind": "heat"}, data=data, show=False).add_to(m)
    else:
        counts = {"view": "counts", "points": "1"}
        source.add(m, micro, CLUSTERS, {"kind": "cluster"}, counts)
        source.add(m, micro, HEAT, {"kind": "heat"}, counts, show=False)
    return elements.finish(m)
