"""A deterministic demo city: the five-level tree with boundaries, and an address gazetteer.

The city is laid out in metres in CGCS2000 / 3-degree Gauss-Krüger CM 120E (EPSG:4549) around
Nantong, then every geometry goes to wgs84 (EPSG:4326) in one vectorised transform and is
rounded to 7 decimals (about 1 cm), so the records and the written files hold the same numbers.

Layout:

- A rectangle cut by a grid of roads (20-30 m wide) into blocks. Cells are the blocks plus half
  of each road around them; cell edges are road centre lines.
- Each block is a compound (小区) = one grid (level 3). A grid covers its block only, never the
  road: a point on a road is in a community and street but in no grid or building.
- Streets (level 1) are contiguous groups of cells; each street is split into contiguous
  communities (level 2). A community's polygon is the union of its cells, roads included, so
  communities tile their street and streets tile the city.
- The park: one block of one community has no compound. The community polygon has a hole
  there, and so does its street: the park belongs to no unit at any level.
- The two-part street: one whole community is moved to a street it does not touch (an
  enclave, 飞地), so that street is a MultiPolygon of two parts that do not touch.
- Buildings (level 4) stand in rows inside each compound (see ``layout``); 党员中心户 (level 5)
  are 1-3 points strictly inside each building.
- Codes: street = county 320602 + 3 digits, community = street + 3 (the 12-digit division
  code), grid = community + 3, building = grid + 3, household = building + 2.
- About 5 % of grids and 5 % of buildings have no leader, so coverage maps show gaps.

Everything is drawn from one ``numpy.random.Generator`` seeded with ``seed``: the same seed
gives the same records and byte-identical files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from gridsvc.demo import names
from gridsvc.demo.gazetteer import GazetteerEntry, gazetteer_rows, write_gazetteer_csv
from gridsvc.demo.layout import index_in_group, layout_buildings
from gridsvc.demo.organic import BLOCK_INSET_M, organic_cells
from gridsvc.demo.regions import grow_regions
from gridsvc.io.records import BoundaryRecord
from gridsvc.spatial.metric import WGS84_EPSG, lonlat_to_metric, transformer

__all__ = [
    "SCALES",
    "SHAPES",
    "DemoCity",
    "GazetteerEntry",
    "Scale",
    "gazetteer_rows",
    "generate_city",
    "write_demo",
    "write_gazetteer_csv",
]

METRIC_EPSG = 4549  # CGCS2000 / 3-degree Gauss-Kruger CM 120E
CENTRE_LONLAT = (120.86, 32.0)  # wgs84, Nantong
COLUMN_WIDTH_M = (130.0, 200.0)  # road centre line to road centre line, west-east
ROW_HEIGHT_M = (120.0, 180.0)  # south-north
ROAD_WIDTHS_M = (20.0, 24.0, 30.0)
LEADERLESS_SHARE = 0.05
MIN_PARK_COMMUNITY_CELLS = 4
MIN_ENCLAVE_GAP_M = 50.0
DOOR_STEP = 6  # door numbers per side of a road per block
DECIMALS = 7
HOUSEHOLD_INSET_M = 2.0
_LONG_FRACTION = re.compile(r"\.\d{8,}")  # a literal first: fast to search


@dataclass(frozen=True)
class Scale:
    streets: int
    communities: int
    cols: int  # blocks west-east
    rows: int  # blocks south-north; grids = cols * rows - 1 (the park)
    buildings_per_grid: int


SCALES: dict[str, Scale] = {
    "small": Scale(streets=3, communities=12, cols=8, rows=8, buildings_per_grid=10),
    "city": Scale(streets=40, communities=350, cols=72, rows=70, buildings_per_grid=15),
    # ~2,900 grids: with organic cells, as many outlines of ~1,000 vertices as a province has
    # counties (the benchmark's high-vertex case)
    "district": Scale(streets=20, communities=200, cols=54, rows=54, buildings_per_grid=15),
    # 10x the city (~760,000 building micro-grids): the province benchmark (make
    # bench-province), generated in memory, not meant to be loaded into a database
    "province": Scale(streets=400, communities=3500, cols=230, rows=224, buildings_per_grid=15),
}


#: Cell outlines: ``rect`` straight road centre lines (4-5 vertices), ``organic`` streets traced
#: with a few hundred vertices a side (``organic``); both give the same tree, names and people.
SHAPES = ("rect", "organic")


@dataclass
class DemoCity:
    records: list[BoundaryRecord]  # levels 1-5, parents first, wgs84, row = 1..n
    gazetteer: list[GazetteerEntry]  # one per building, in building order
    seed: int = 1
    scale: str = "small"
    shape: str = "rect"


class _Unit(NamedTuple):
    """A street, community or grid before the transform (geometry in metres, EPSG:4549)."""

    level: int
    code: str
    name: str
    parent_code: str | None
    geometry: BaseGeometry
    address: str | None = None


@dataclass(frozen=True)
class _Compound:
    """What buildings and the gazetteer need to know of a grid (level 3)."""

    code: str
    name: str
    street: str
    road: str
    door: str
    block: tuple[float, float, float, float]  # metres, EPSG:4549
    target: int  # buildings wanted

    @property
    def address(self) -> str:
        return f"{self.road}{self.door}{self.name}"


def generate_city(seed: int = 1, scale: str = "small", shape: str = "rect") -> DemoCity:
    """Build the demo city for ``seed`` at ``scale`` (a key of ``SCALES``) with cells of
    ``shape`` (one of ``SHAPES``)."""
    if scale not in SCALES:
        raise ValueError(f"unknown demo scale {scale!r}; use one of {', '.join(SCALES)}")
    if shape not in SHAPES:
        raise ValueError(f"unknown demo shape {shape!r}; use one of {', '.join(SHAPES)}")
    organic = shape == "organic"
    spec = SCALES[scale]
    rng = np.random.default_rng(seed)
    xs, ys, wx, wy = _road_grid(spec, rng)
    community_of, street_of = _partition(spec, rng)
    park = _pick_park(community_of, rng)
    # the organic outlines come from their own generator: both shapes share everything else
    cells = (organic_cells(xs, ys, np.random.default_rng([seed, 1])).ravel() if organic
             else shapely.box(*(a.ravel() for a in _cell_edges(xs, ys))))
    inset = BLOCK_INSET_M if organic else 0.0
    park_block = shapely.box(*_block(park, xs, ys, wx, wy, inset))
    union = shapely.coverage_union_all if organic else shapely.union_all
    shapes = np.array([_community_shape(cells, community_of, k, park, park_block, union)
                       for k in range(len(street_of))])
    street_of = _make_enclave(shapes, street_of, rng, union)
    street_shapes = np.array([union(shapes[street_of == s])
                              for s in range(spec.streets)])
    roads = names.unique_names(rng, names.ROAD_WORDS, ["{}路", "{}街", "{}大道"],
                               len(xs) + len(ys))
    street_names = names.unique_names(rng, names.STREET_WORDS, ["{}街道"], spec.streets)
    community_names = names.unique_names(
        rng, names.PLACE_WORDS, ["{}社区", "{}东社区", "{}西社区", "{}南社区", "{}北社区"],
        len(street_of))
    compound_words = [w + kind for w in names.PLACE_WORDS for kind in names.COMPOUND_KINDS]
    compound_names = iter(names.unique_names(rng, compound_words, names.COMPOUND_TEMPLATES,
                                             spec.rows * spec.cols - 1))
    sides = rng.integers(4, size=community_of.shape)
    door_offsets = rng.integers(DOOR_STEP, size=community_of.shape)
    targets = np.clip(np.rint(rng.normal(spec.buildings_per_grid, spec.buildings_per_grid / 4,
                                         size=community_of.shape)),
                      3, 2 * spec.buildings_per_grid).astype(int)

    units: list[_Unit] = []
    compounds: list[_Compound] = []
    for s_serial, s in enumerate(_north_west_order(street_shapes), start=1):
        street_code = f"{names.COUNTY_CODE}{s_serial:03d}"
        units.append(_Unit(1, street_code, street_names[s], None, street_shapes[s]))
        members = np.flatnonzero(street_of == s)
        for c_serial, k in enumerate(members[_north_west_order(shapes[members])], start=1):
            community_code = f"{street_code}{c_serial:03d}"
            units.append(_Unit(2, community_code, community_names[k], street_code, shapes[k]))
            rows, cols = np.nonzero(community_of == k)
            order = np.lexsort((cols, -rows))  # north to south, west to east
            grid_cells = [(int(rows[i]), int(cols[i])) for i in order
                          if (rows[i], cols[i]) != park]
            for g_serial, cell in enumerate(grid_cells, start=1):
                road, door = _frontage(cell, int(sides[cell]), int(door_offsets[cell]),
                                       roads, len(ys))
                compound = _Compound(
                    code=f"{community_code}{g_serial:03d}", name=next(compound_names),
                    street=street_names[s], road=road, door=door,
                    block=_block(cell, xs, ys, wx, wy, inset), target=int(targets[cell]))
                compounds.append(compound)
                grid = cells[cell[0] * spec.cols + cell[1]] if organic \
                    else shapely.box(*compound.block)
                units.append(_Unit(3, compound.code, compound.name, community_code, grid,
                                   compound.address))
    units.sort(key=lambda u: u.level)  # stable: parents first, each level in code order
    city = _assemble(units, compounds, rng, seed, scale)
    city.shape = shape
    return city


# --- the plan in metres --------------------------------------------------------------------


def _road_grid(
    spec: Scale, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Road centre lines ``xs`` (west-east), ``ys`` (south-north) and their widths, EPSG:4549."""
    widths = rng.uniform(*COLUMN_WIDTH_M, size=spec.cols)
    heights = rng.uniform(*ROW_HEIGHT_M, size=spec.rows)
    cx, cy = lonlat_to_metric(*CENTRE_LONLAT, METRIC_EPSG)
    xs = cx - widths.sum() / 2 + np.concatenate([[0.0], np.cumsum(widths)])
    ys = cy - heights.sum() / 2 + np.concatenate([[0.0], np.cumsum(heights)])
    wx = rng.choice(ROAD_WIDTHS_M, size=len(xs))
    wy = rng.choice(ROAD_WIDTHS_M, size=len(ys))
    return xs, ys, wx, wy


def _cell_edges(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, ...]:
    """xmin, ymin, xmax, ymax of every cell, each ``(rows, cols)``."""
    x0, y0 = np.meshgrid(xs[:-1], ys[:-1])
    x1, y1 = np.meshgrid(xs[1:], ys[1:])
    return x0, y0, x1, y1


def _block(
    cell: tuple[int, int], xs: np.ndarray, ys: np.ndarray, wx: np.ndarray, wy: np.ndarray,
    inset: float = 0.0,
) -> tuple[float, float, float, float]:
    """The block of a cell: the cell without the half roads around it (and ``inset`` more)."""
    r, c = cell
    return (float(xs[c] + wx[c] / 2 + inset), float(ys[r] + wy[r] / 2 + inset),
            float(xs[c + 1] - wx[c + 1] / 2 - inset), float(ys[r + 1] - wy[r + 1] / 2 - inset))


def _partition(spec: Scale, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Community label of every cell ``(rows, cols)`` and the street of every community."""
    street_cells = grow_regions(np.ones((spec.rows, spec.cols), dtype=bool), spec.streets, rng)
    per_street = _apportion(spec.communities, np.bincount(street_cells.ravel()))
    community_of = np.full(street_cells.shape, -1)
    street_of: list[int] = []
    for s, count in enumerate(per_street):
        local = grow_regions(street_cells == s, int(count), rng)
        for j in range(count):
            community_of[local == j] = len(street_of)
            street_of.append(s)
    return community_of, np.array(street_of)


def _apportion(total: int, sizes: np.ndarray) -> np.ndarray:
    """Split ``total`` in proportion to ``sizes`` (largest remainder), at least 1 each."""
    quotas = total * sizes / sizes.sum()
    counts = np.floor(quotas).astype(int)
    short = total - counts.sum()
    counts[np.argsort(-(quotas - counts), kind="stable")[:short]] += 1
    return np.clip(counts, 1, sizes)


def _pick_park(community_of: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """A random cell of a random community big enough to give one block to a park."""
    sizes = np.bincount(community_of.ravel())
    candidates = np.flatnonzero(sizes >= MIN_PARK_COMMUNITY_CELLS)
    community = candidates[rng.integers(len(candidates))]
    rows, cols = np.nonzero(community_of == community)
    i = rng.integers(len(rows))
    return int(rows[i]), int(cols[i])


def _community_shape(
    cells: np.ndarray, community_of: np.ndarray, k: int, park: tuple[int, int],
    park_block: BaseGeometry, union: Callable[[np.ndarray], BaseGeometry],
) -> BaseGeometry:
    """The union of the community's cells (``union``: the cells share their edges exactly, so
    ``shapely.coverage_union_all`` does it fast for organic ones), less the park."""
    shape = union(cells[community_of.ravel() == k])
    return shape.difference(park_block) if community_of[park] == k else shape


def _make_enclave(
    shapes: np.ndarray, street_of: np.ndarray, rng: np.random.Generator,
    union: Callable[[np.ndarray], BaseGeometry],
) -> np.ndarray:
    """Move one community to a street it does not touch, leaving its old street in one piece."""
    n_streets = int(street_of.max()) + 1
    streets = [union(shapes[street_of == s]) for s in range(n_streets)]
    index = np.arange(len(street_of))
    for target in rng.permutation(n_streets):
        for k in rng.permutation(len(street_of)):
            home = street_of[k]
            if home == target or (street_of == home).sum() < 2:
                continue
            if shapely.distance(shapes[k], streets[target]) < MIN_ENCLAVE_GAP_M:
                continue
            rest = union(shapes[(street_of == home) & (index != k)])
            if rest.geom_type == "Polygon":
                moved = street_of.copy()
                moved[k] = target
                return moved
    raise RuntimeError("no community can be moved to make a street of two separate parts")


def _north_west_order(shapes: np.ndarray) -> np.ndarray:
    """Indices ordering shapes by centroid, north to south, then west to east."""
    centres = shapely.centroid(shapes)
    return np.lexsort((shapely.get_x(centres), -np.round(shapely.get_y(centres), 3)))


def _frontage(
    cell: tuple[int, int], side: int, offset: int, roads: list[str], n_ys: int
) -> tuple[str, str]:
    """The road a compound's gate faces and its door number (odd on one side, even opposite).

    ``side``: 0 south, 1 north, 2 west, 3 east. Roads ``0..n_ys-1`` run west-east (numbered
    from the west), the rest south-north (numbered from the south).
    """
    r, c = cell
    line, along, odd = [(r, c, True), (r + 1, c, False),
                        (n_ys + c, r, True), (n_ys + c + 1, r, False)][side]
    number = 2 * (along * DOOR_STEP + offset) + (1 if odd else 2)
    return roads[line], f"{number}号"


# --- records, people and the gazetteer -------------------------------------------------------


def _assemble(
    units: list[_Unit], compounds: list[_Compound], rng: np.random.Generator, seed: int,
    scale: str,
) -> DemoCity:
    """Add buildings and households, people and counts; transform; make the records."""
    boxes, owner = layout_buildings(np.array([c.block for c in compounds]),
                                    np.array([c.target for c in compounds]), rng)
    serial = index_in_group(np.bincount(owner, minlength=len(compounds))) + 1
    homes = rng.integers(1, 4, size=len(boxes))  # 党员中心户 per building
    home_points, home_of, home_unit = _home_points(boxes, homes, rng)
    centres = shapely.points((boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2)
    wgs = _to_wgs84(np.concatenate([
        np.array([u.geometry for u in units], dtype=object),
        shapely.box(*boxes.T), home_points, centres,
    ]))
    unit_geoms, building_geoms, home_geoms, centre_geoms = np.split(
        wgs, np.cumsum([len(units), len(boxes), len(home_points)]))

    n_people = len(units) + len(boxes) + len(home_points)
    people = names.person_names(rng, n_people)
    phones = names.phone_numbers(rng, n_people)
    leaderless = np.zeros(n_people, dtype=bool)
    for start, count in ((len(units) - len(compounds), len(compounds)),  # grids
                         (len(units), len(boxes))):  # buildings
        missing = max(1, round(LEADERLESS_SHARE * count))
        leaderless[start + rng.choice(count, size=missing, replace=False)] = True
    gaps = leaderless.tolist()
    leaders = [None if gap else name for name, gap in zip(people, gaps, strict=True)]
    unit_phones = [None if gap else phone for phone, gap in zip(phones, gaps, strict=True)]
    building_households = rng.integers(30, 151, size=len(boxes))
    home_households = rng.integers(6, 15, size=len(home_points)).tolist()
    floors = rng.integers(1, 19, size=len(home_points)).tolist()
    rooms = rng.integers(1, 5, size=len(home_points)).tolist()

    grid_households = np.bincount(owner, weights=building_households,
                                  minlength=len(compounds)).astype(int)
    households = _sums(units, compounds, grid_households)
    building_households = building_households.tolist()
    serial = serial.tolist()
    compound_of = [compounds[i] for i in owner.tolist()]
    numbers = [f"{n}栋" for n in serial]
    building_codes = [f"{c.code}{n:03d}" for c, n in zip(compound_of, serial, strict=True)]
    addresses = [c.address + n for c, n in zip(compound_of, numbers, strict=True)]
    lonlat = shapely.get_coordinates(centre_geoms).tolist()

    levels: list[tuple[int, str, str, str | None, BaseGeometry, int, str | None, dict]] = [
        (u.level, u.code, u.name, u.parent_code, g, households[u.code], u.address, {})
        for u, g in zip(units, unit_geoms, strict=True)
    ]
    levels += [
        (4, code, c.name + number, c.code, g, h, address, {})
        for c, number, code, address, g, h in zip(
            compound_of, numbers, building_codes, addresses, building_geoms,
            building_households, strict=True)
    ]
    levels += [
        (5, f"{building_codes[b]}{u:02d}", f"{compound_of[b].name}{numbers[b]}{u}单元中心户",
         building_codes[b], g, h, f"{addresses[b]}{u}单元{floor}{room:02d}室",
         {"covers": [str(u)]})  # the 单元 it serves, as parse() writes it: 2单元 -> "2"
        for b, u, g, h, floor, room in zip(home_of.tolist(), home_unit.tolist(), home_geoms,
                                           home_households, floors, rooms, strict=True)
    ]
    records = [
        BoundaryRecord(row=i + 1, code=code, name=name, level=level, parent_code=parent,
                       geometry=geom, leader=leaders[i], phone=unit_phones[i], households=count,
                       address=address, properties=props)
        for i, (level, code, name, parent, geom, count, address, props) in enumerate(levels)
    ]
    gazetteer = [
        GazetteerEntry(address=address, district=names.DISTRICT, street=c.street, road=c.road,
                       door_number=c.door, compound=c.name, building=number, lon=lon, lat=lat,
                       building_code=code)
        for c, number, code, address, (lon, lat) in zip(
            compound_of, numbers, building_codes, addresses, lonlat, strict=True)
    ]
    return DemoCity(records=records, gazetteer=gazetteer, seed=seed, scale=scale)


def _sums(units: list[_Unit], compounds: list[_Compound], grid_households: np.ndarray
          ) -> dict[str, int]:
    """Households of every grid, community and street: sums over the buildings below."""
    totals = {c.code: int(h) for c, h in zip(compounds, grid_households, strict=True)}
    for unit in sorted(units, key=lambda u: -u.level):  # grids, then communities
        if unit.parent_code is not None:
            totals[unit.parent_code] = totals.get(unit.parent_code, 0) + totals[unit.code]
    return totals


def _home_points(
    boxes: np.ndarray, homes: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points strictly inside the buildings: ``homes[i]`` in building ``i``.

    Returns the points (metres), the building index of each and its unit number 1..homes[i].
    """
    building = np.repeat(np.arange(len(boxes)), homes)
    unit = index_in_group(homes) + 1
    b = boxes[building]
    inset_x = np.minimum(HOUSEHOLD_INSET_M, (b[:, 2] - b[:, 0]) / 4)
    inset_y = np.minimum(HOUSEHOLD_INSET_M, (b[:, 3] - b[:, 1]) / 4)
    x = b[:, 0] + inset_x + rng.random(len(b)) * (b[:, 2] - b[:, 0] - 2 * inset_x)
    y = b[:, 1] + inset_y + rng.random(len(b)) * (b[:, 3] - b[:, 1] - 2 * inset_y)
    return shapely.points(x, y), building, unit


def _to_wgs84(geoms: np.ndarray) -> np.ndarray:
    """EPSG:4549 metres to wgs84 lon/lat rounded to ``DECIMALS``, in one vectorised pass;
    exterior rings counter-clockwise and holes clockwise, as RFC 7946 asks."""
    to_lonlat = transformer(METRIC_EPSG, WGS84_EPSG)

    def apply(xy: np.ndarray) -> np.ndarray:
        lon, lat = to_lonlat.transform(xy[:, 0], xy[:, 1])
        return _round(np.column_stack([lon, lat]))

    return shapely.orient_polygons(shapely.transform(geoms, apply))


def _round(xy: np.ndarray) -> np.ndarray:
    """Round to ``DECIMALS``: each result is the double nearest its 7-decimal value."""
    scale = 10.0**DECIMALS
    return np.rint(xy * scale) / scale


# --- files -----------------------------------------------------------------------------------


def write_demo(city: DemoCity, folder: Path) -> None:
    """Write ``folder/city.geojson`` and ``folder/gazetteer.csv`` (made if missing).

    The GeoJSON is one FeatureCollection in the interchange schema (``boundaries/SCHEMA.md``),
    one feature a line in row order, wgs84 coordinates rounded to 7 decimals.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    records = sorted(city.records, key=lambda r: r.row)
    geometries = shapely.to_geojson(
        shapely.transform(np.array([r.geometry for r in records], dtype=object), _round))
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    lines = []
    for record, geometry in zip(records, geometries, strict=True):
        properties = {
            "code": record.code, "name": record.name, "level": int(record.level),
            "parent_code": record.parent_code, "leader": record.leader, "phone": record.phone,
            "households": record.households, "address": record.address,
            **record.properties,
        }
        lines.append(f'{{"type":"Feature","properties":{encode(properties)},'
                     f'"geometry":{geometry}}}')
    text = '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n"
    text = _shortest_numbers(text)
    (folder / "city.geojson").write_text(text, encoding="utf-8")
    write_gazetteer_csv(city.gazetteer, folder / "gazetteer.csv")


def _shortest_numbers(text: str) -> str:
    """Rewrite numbers GEOS printed with 17 digits (32.002940099999996) in Python's shortest
    form (32.0029401); the coordinates are already rounded, so that has at most 7 decimals."""
    pieces: list[str] = []
    done = 0
    for match in _LONG_FRACTION.finditer(text):
        start = match.start()
        while start > done and text[start - 1] in "-0123456789":
            start -= 1
        pieces += [text[done:start], repr(float(text[start:match.end()]))]
        done = match.end()
    pieces.append(text[done:])
    return "".join(pieces)
