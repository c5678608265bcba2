"""The point -> micro-grid index: boundary ownership, holes, multipolygons, nearest, chains."""

from __future__ import annotations

import os

import numpy as np
import pytest
import shapely
from organic_support import (
    check_against_covers,
    covering,
    full_scan_index,
    organic_town,
    probe_points,
)
from pyproj import Geod
from shapely.geometry import MultiPolygon, Point, Polygon, box

from gridsvc.spatial import index as index_module
from gridsvc.spatial.index import IndexBuildError, ParentArrays, PolygonIndex

X0, Y0 = 120.86, 32.0  # wgs84, Nantong
D = 0.001  # about 100 m


def grid_2x2() -> np.ndarray:
    """Four squares meeting at (X0 + D, Y0 + D): SW, SE, NW, NE."""
    return np.array([
        box(X0, Y0, X0 + D, Y0 + D),
        box(X0 + D, Y0, X0 + 2 * D, Y0 + D),
        box(X0, Y0 + D, X0 + D, Y0 + 2 * D),
        box(X0 + D, Y0 + D, X0 + 2 * D, Y0 + 2 * D),
    ])


SW, SE, NW, NE = 10, 11, 12, 13
GRID_IDS = np.array([SW, SE, NW, NE])


def covering_ids(geoms: np.ndarray, ids: np.ndarray, x: float, y: float) -> set[int]:
    """What PostGIS ST_Covers / a GEOS intersects says: every polygon holding the point."""
    return {int(i) for g, i in zip(geoms, ids, strict=True) if g.intersects(Point(x, y))}


@pytest.fixture(params=["one", "many"])
def lookup(request, monkeypatch):
    """locate one point at a time, or through locate_many's sorted parallel path."""
    if request.param == "one":
        return lambda idx, xs, ys: np.array([idx.locate(x, y) for x, y in zip(xs, ys, strict=True)])
    monkeypatch.setattr(index_module, "PARALLEL_MIN_POINTS", 0)
    return lambda idx, xs, ys: idx.locate_many(np.asarray(xs), np.asarray(ys))


def test_shared_edges_and_vertex_go_to_exactly_one_square_by_the_rule(lookup):
    geoms = grid_2x2()
    idx = PolygonIndex.build(geoms, GRID_IDS)
    cases = {
        (X0 + D, Y0 + D / 2): SE,  # vertical edge SW|SE: the east one
        (X0 + D, Y0 + 1.5 * D): NE,  # vertical edge NW|NE: the east one
        (X0 + D / 2, Y0 + D): NW,  # horizontal edge SW/NW: the north one
        (X0 + 1.5 * D, Y0 + D): NE,  # horizontal edge SE/NE: the north one
        (X0 + D, Y0 + D): NE,  # the vertex all four share: the north-east one
        (X0 + D, Y0): SE,  # vertex on the south outline shared by SW and SE: east
        (X0, Y0 + D): NW,  # vertex on the west outline shared by SW and NW: north
    }
    xs, ys = zip(*cases, strict=True)
    got = lookup(idx, xs, ys)
    for (x, y), want, g in zip(cases, cases.values(), got, strict=True):
        assert len(covering_ids(geoms, GRID_IDS, x, y)) >= 2  # GEOS matches several
        assert g == want, (x, y)


def test_boundary_owner_does_not_depend_on_input_order():
    geoms = grid_2x2()
    points = [(X0 + D, Y0 + D / 2), (X0 + D / 2, Y0 + D), (X0 + D, Y0 + D), (X0 + D, Y0)]
    forward = PolygonIndex.build(geoms, GRID_IDS)
    backward = PolygonIndex.build(geoms[::-1], GRID_IDS[::-1])
    for x, y in points:
        assert forward.locate(x, y) == backward.locate(x, y)


def test_outline_points_no_neighbour_claims_go_to_the_polygon_that_covers_them():
    geoms = grid_2x2()
    idx = PolygonIndex.build(geoms, GRID_IDS)
    assert idx.locate(X0 + 2 * D, Y0 + D / 2) == SE  # east outline, no neighbour east
    assert idx.locate(X0 + D / 2, Y0 + 2 * D) == NW  # north outline
    assert idx.locate(X0 + 2 * D, Y0 + 2 * D) == NE  # north-east corner of the block
    assert idx.locate(X0, Y0) == SW  # south-west corner: SW's own corner
    # The top middle vertex is NW's and NE's corner, neither opens east-north-east:
    # the first given wins.
    assert idx.locate(X0 + D, Y0 + 2 * D) == NW
    reordered = PolygonIndex.build(geoms[[3, 2, 1, 0]], GRID_IDS[[3, 2, 1, 0]])
    assert reordered.locate(X0 + D, Y0 + 2 * D) == NE


def test_rows_of_rectangles_with_t_junctions(lookup):
    """A row of two above a row of three: vertices of one row lie on edges of the other."""
    xs_top = X0 + np.array([0, 1.5, 3.0]) * D
    xs_bottom = X0 + np.array([0, 1.0, 2.0, 3.0]) * D
    top = [box(xs_top[k], Y0 + D, xs_top[k + 1], Y0 + 2 * D) for k in range(2)]
    bottom = [box(xs_bottom[k], Y0, xs_bottom[k + 1], Y0 + D) for k in range(3)]
    geoms = np.array(top + bottom)
    ids = np.arange(5)
    idx = PolygonIndex.build(geoms, ids)
    points_x = np.concatenate([xs_top, xs_bottom, X0 + np.array([0.25, 0.75, 1.25, 2.5]) * D])
    got = lookup(idx, points_x, np.full(len(points_x), Y0 + D))
    for x, g in zip(points_x, got, strict=True):
        owners = covering_ids(geoms, ids, x, Y0 + D)
        assert g in owners
        if x < X0 + 3 * D:  # on the shared line, not its east end: the north row owns it
            assert g in (0, 1)


def test_sloping_shared_edge_partitions_nearby_points():
    """Two quadrilaterals sharing a sloping edge: every point near it has exactly one owner."""
    a, b = (X0 + 0.3 * D, Y0), (X0 + 0.7 * D, Y0 + D)  # the shared edge
    west = Polygon([(X0, Y0), a, b, (X0, Y0 + D)])
    east = Polygon([a, (X0 + D, Y0), (X0 + D, Y0 + D), b])
    geoms = np.array([west, east])
    idx = PolygonIndex.build(geoms, np.array([1, 2]))
    rng = np.random.default_rng(7)
    t = rng.uniform(0.01, 0.99, 2000)
    x = a[0] + t * (b[0] - a[0]) + rng.uniform(-1e-12, 1e-12, t.size)
    y = a[1] + t * (b[1] - a[1])
    got = idx.locate_many(x, y)
    assert set(np.unique(got)) <= {1, 2}
    inside_west = shapely.contains_xy(west, x, y)
    inside_east = shapely.contains_xy(east, x, y)
    assert (got[inside_west] == 1).all()
    assert (got[inside_east] == 2).all()
    # The shared vertices: the lower one (a) opens east-north-east into the east polygon.
    assert idx.locate(*a) == 2
    assert idx.locate(*b) in covering_ids(geoms, np.array([1, 2]), *b)


def test_holes_and_islands(lookup):
    shell = box(X0, Y0, X0 + 3 * D, Y0 + 3 * D)
    hole = box(X0 + D, Y0 + D, X0 + 2 * D, Y0 + 2 * D)
    ring_building = Polygon(shell.exterior.coords, [hole.exterior.coords])
    idx = PolygonIndex.build(np.array([ring_building]), np.array([1]))
    xs = [X0 + 1.5 * D, X0 + 0.5 * D, X0 + 2 * D, X0 + 1.5 * D]
    ys = [Y0 + 1.5 * D, Y0 + 1.5 * D, Y0 + 1.5 * D, Y0 + D]
    # in the hole: none; in the ring: it; on the hole's edges: it (it covers them)
    assert list(lookup(idx, xs, ys)) == [-1, 1, 1, 1]

    with_island = PolygonIndex.build(np.array([ring_building, hole]), np.array([1, 2]))
    got = lookup(with_island, xs, ys)
    # on the hole's east edge the ring lies east: the ring; on its south edge the island
    # lies north: the island; on its west edge the island lies east: the island
    assert list(got) == [2, 1, 1, 2]
    assert with_island.locate(X0 + D, Y0 + 1.5 * D) == 2


def test_multipolygon_parts_and_the_gap_between(lookup):
    parts = MultiPolygon([box(X0, Y0, X0 + D, Y0 + D), box(X0 + 2 * D, Y0, X0 + 3 * D, Y0 + D)])
    other = box(X0, Y0 + 2 * D, X0 + D, Y0 + 3 * D)
    idx = PolygonIndex.build(np.array([parts, other]), np.array([5, 6]))
    xs = [X0 + 0.5 * D, X0 + 2.5 * D, X0 + 1.5 * D, X0 + 0.5 * D, X0 + 0.5 * D]
    ys = [Y0 + 0.5 * D, Y0 + 0.5 * D, Y0 + 0.5 * D, Y0 + 2.5 * D, Y0 + 1.5 * D]
    assert list(lookup(idx, xs, ys)) == [5, 5, -1, 6, -1]


def test_points_outside_the_extent_and_not_numbers(lookup):
    idx = PolygonIndex.build(grid_2x2(), GRID_IDS)
    xs = [X0 - 1, X0 + 5 * D, X0 + D, 0.0, float("nan"), X0 + D / 2, float("inf")]
    ys = [Y0, Y0 + D, Y0 - D, 0.0, Y0 + D / 2, float("nan"), Y0]
    assert list(lookup(idx, xs, ys)) == [-1] * len(xs)


def random_town(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of adjacent rectangles with gaps, a few rotated buildings and courtyards."""
    rng = np.random.default_rng(seed)
    geoms = []
    for row in range(12):
        y = Y0 + row * 1.3 * D
        walls = X0 + np.cumsum(np.r_[0.0, rng.uniform(0.2, 0.5, 15)]) * D
        for k in range(15):
            if rng.random() < 0.15:
                continue  # a passage
            geoms.append(box(walls[k], y, walls[k + 1], y + D))
    for k in range(10):
        centre = (X0 + (k + 0.5) * 0.6 * D, Y0 - 2 * D)
        poly = shapely.affinity.rotate(box(-2e-4, -1e-4, 2e-4, 1e-4), 17 * k, origin=(0, 0))
        geoms.append(shapely.affinity.translate(poly, *centre))
    courtyard = Polygon(box(X0, Y0 - 4 * D, X0 + D, Y0 - 3 * D).exterior.coords,
                        [box(X0 + 3e-4, Y0 - 3.7e-3, X0 + 7e-4, Y0 - 3.3e-3).exterior.coords])
    geoms.append(courtyard)
    return np.array(geoms), np.arange(100, 100 + len(geoms))


@pytest.mark.parametrize("cell_size", [None, 1e-4, 1.0])
def test_agrees_with_shapely_on_random_points(cell_size):
    geoms, ids = random_town(3)
    idx = PolygonIndex.build(geoms, ids, cell_size=cell_size)
    xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
    rng = np.random.default_rng(4)
    x = rng.uniform(xmin - D, xmax + D, 30_000)
    y = rng.uniform(ymin - D, ymax + D, 30_000)
    got = idx.locate_many(x, y)
    inside = np.array([shapely.contains_xy(g, x, y) for g in geoms])  # (polygons, points)
    covered = np.array([shapely.intersects_xy(g, x, y) for g in geoms])
    clear = inside.sum(axis=0) == covered.sum(axis=0)  # not on any boundary
    want = np.where(inside.any(axis=0), ids[inside.argmax(axis=0)], -1)
    assert (got[clear] == want[clear]).all()
    assert clear.mean() > 0.99
    assert 0.1 < (got >= 0).mean() < 0.9  # the sample has both covered and uncovered points


def test_locate_and_both_locate_many_paths_agree(monkeypatch):
    geoms, ids = random_town(5)
    idx = PolygonIndex.build(geoms, ids)
    xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
    rng = np.random.default_rng(6)
    x = rng.uniform(xmin, xmax, 5000)
    y = rng.uniform(ymin, ymax, 5000)
    vertices = shapely.get_coordinates(geoms)
    x, y = np.r_[x, vertices[:, 0]], np.r_[y, vertices[:, 1]]
    one_by_one = np.array([idx.locate(a, b) for a, b in zip(x, y, strict=True)])
    monkeypatch.setattr(index_module, "PARALLEL_MIN_POINTS", 10**9)
    serial = idx.locate_many(x, y)
    monkeypatch.setattr(index_module, "PARALLEL_MIN_POINTS", 0)
    sorted_parallel = idx.locate_many(x, y)
    assert (one_by_one == serial).all()
    assert (one_by_one == sorted_parallel).all()
    assert (one_by_one[-len(vertices):] >= 0).all()  # every vertex is covered by someone


def test_build_is_deterministic():
    geoms, ids = random_town(8)
    a = PolygonIndex.build(geoms, ids)
    b = PolygonIndex.build(geoms, ids)
    assert np.array_equal(a._fdata, b._fdata)
    assert np.array_equal(a._idata, b._idata)
    assert a.memory_bytes() == b.memory_bytes() > 0


def test_nearest_id_and_distance_in_metres():
    geoms = grid_2x2()
    far = box(X0 + 5 * D, Y0, X0 + 6 * D, Y0 + D)
    idx = PolygonIndex.build(np.append(geoms, far), np.append(GRID_IDS, 20))
    geod = Geod(ellps="WGS84")
    # due east of SE's east side, at the latitude of its middle: the foot is on that side
    x, y = X0 + 2.4 * D, Y0 + 0.5 * D
    found = idx.nearest(x, y, 500.0)
    assert found is not None
    assert found[0] == SE
    _, _, want = geod.inv(X0 + 2 * D, y, x, y)
    assert found[1] == pytest.approx(want, rel=0.01)
    # due north of NW's north side
    x, y = X0 + 0.5 * D, Y0 + 2.3 * D
    found = idx.nearest(x, y, 500.0)
    _, _, want = geod.inv(x, Y0 + 2 * D, x, y)
    assert found[0] == NW
    assert found[1] == pytest.approx(want, rel=0.01)
    # nearer to the far square than to the block; and out of reach
    assert idx.nearest(X0 + 4.8 * D, Y0 + 0.5 * D, 500.0)[0] == 20
    assert idx.nearest(X0 + 2.4 * D, Y0 + 0.5 * D, 10.0) is None


def test_nearest_many_matches_nearest():
    geoms, ids = random_town(9)
    idx = PolygonIndex.build(geoms, ids)
    rng = np.random.default_rng(10)
    xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
    x = rng.uniform(xmin - 2 * D, xmax + 2 * D, 200)
    y = rng.uniform(ymin - 2 * D, ymax + 2 * D, 200)
    got_ids, got_m = idx.nearest_many(x, y, 80.0)
    for k in range(len(x)):
        single = idx.nearest(x[k], y[k], 80.0)
        if single is None:
            assert got_ids[k] == -1 and np.isnan(got_m[k])
        else:
            assert (got_ids[k], got_m[k]) == single
            assert single[1] <= 80.0
    assert (got_ids == -1).any() and (got_ids >= 0).any()
    with pytest.raises(ValueError, match="max_distance_m"):
        idx.nearest(X0, Y0, 0)


def test_chain_rows_and_matrix():
    # 0 street; 1, 2 communities; 3 grid in 1; 4, 5 buildings in 3; 6 building directly in 2
    parents = ParentArrays(np.array([-1, 0, 0, 1, 3, 3, 2]))
    assert parents.depth == 4
    assert parents.chain_rows(5) == [5, 3, 1, 0]
    assert parents.chain_rows(6) == [6, 2, 0]
    assert parents.chain_rows(-1) == []
    matrix = parents.chain_matrix(np.array([4, 6, -1, 0]))
    assert matrix.tolist() == [[4, 3, 1, 0], [6, 2, 0, -1], [-1, -1, -1, -1], [0, -1, -1, -1]]
    with pytest.raises(ValueError, match="rows"):
        parents.chain_matrix(np.array([7]))


def test_chain_after_locate():
    idx = PolygonIndex.build(grid_2x2(), np.array([3, 4, 5, 6]))
    parents = ParentArrays(np.array([-1, 0, 1, 2, 2, 2, 2]))
    rows = idx.locate_many(np.array([X0 + D / 2, X0 - D]), np.array([Y0 + D / 2, Y0]))
    assert parents.chain_matrix(rows).tolist() == [[3, 2, 1, 0], [-1, -1, -1, -1]]


@pytest.mark.parametrize("parent_of, message", [
    ([-1, 0, 5], "parent_of\\[2\\] = 5"),
    ([1, 2, 0], "cycle"),
    ([-1, -2], "parent_of\\[1\\] = -2"),
])
def test_parent_arrays_reject_bad_trees(parent_of, message):
    with pytest.raises(ValueError, match=message):
        ParentArrays(np.array(parent_of))


@pytest.mark.parametrize("geoms, ids, message", [
    ([box(X0, Y0, X0 + D, Y0 + D), None], [1, 2], "position 1 \\(id 2\\) is missing"),
    ([Point(X0, Y0)], [1], "position 0 \\(id 1\\) is a Point"),
    ([Polygon()], [1], "is an empty Polygon"),
    ([box(X0, Y0, X0 + D, Y0 + D)], [1, 2], "equal length"),
    ([box(X0, Y0, X0 + D, Y0 + D)], [-1], "position 0 has -1"),
    ([box(X0, Y0, X0 + D, Y0 + D)], [1.5], "integers"),
    ([], [], "no polygons"),
])
def test_build_rejects_bad_input_saying_where(geoms, ids, message):
    with pytest.raises(IndexBuildError, match=message):
        PolygonIndex.build(np.array(geoms, dtype=object), np.array(ids))


def test_locate_many_rejects_mismatched_arrays():
    idx = PolygonIndex.build(grid_2x2(), GRID_IDS)
    with pytest.raises(ValueError, match="differ in length"):
        idx.locate_many(np.zeros(3), np.zeros(2))


def test_parallel_lookups_still_work_in_a_forked_worker(monkeypatch):
    """A web server forks workers after the master ran the parallel kernel (GNU OpenMP aborts)."""
    monkeypatch.setattr(index_module, "PARALLEL_MIN_POINTS", 0)
    idx = PolygonIndex.build(grid_2x2(), GRID_IDS)
    x = np.full(1000, X0 + D / 2)
    y = np.full(1000, Y0 + D / 2)
    assert (idx.locate_many(x, y) == SW).all()
    pid = os.fork()
    if pid == 0:  # the worker
        ok = (idx.locate_many(x, y) == SW).all()
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


# --- high-vertex organic outlines ------------------------------------------------------------


@pytest.fixture(scope="module")
def organic() -> tuple[np.ndarray, np.ndarray, PolygonIndex, PolygonIndex]:
    geoms, ids = organic_town()
    return geoms, ids, PolygonIndex.build(geoms, ids), full_scan_index(geoms, ids)


def test_organic_outlines_build_cells_inside_split_and_few_edges(organic):
    geoms, _, idx, reference = organic
    stats = idx.stats()
    assert np.median(shapely.get_num_coordinates(geoms)) > 700  # high-vertex outlines
    assert stats["cells_whole_in_one_polygon"] > 0  # answered without any edge test
    assert stats["split_cells"] > 0  # cells on the outlines were split
    assert stats["edges_per_item_mean"] < index_module.MAX_EDGES_PER_CELL
    assert reference.stats()["cells"] == 1 and reference.stats()["split_cells"] == 0


@pytest.mark.parametrize("kind", ["random", "vertices", "edge midpoints", "near vertices"])
def test_organic_outlines_follow_the_rule_exactly_and_agree_with_covers(organic, lookup, kind):
    """Every probe: the same answer as testing every edge of every polygon (the boundary rule
    bit for bit), and one of the polygons GEOS says cover the point (-1 where none does)."""
    geoms, ids, idx, reference = organic
    x, y = probe_points(geoms)[kind]
    got = lookup(idx, x, y)
    assert (got == reference.locate_many(x, y)).all()
    if kind != "edge midpoints":  # a midpoint of a sloping edge is on it only within rounding
        point, owner = covering(geoms, ids, x, y)
        assert check_against_covers(got, point, owner) == 0
    if kind == "vertices":
        assert (got >= 0).all()  # every vertex is owned by someone


def test_organic_hole_island_and_two_parts(organic):
    geoms, ids, idx, _ = organic
    host, island, two_parts = geoms[6], geoms[-1], geoms[11]
    inner = island.representative_point()
    assert idx.locate(inner.x, inner.y) == ids[-1]  # in the hole: the island, not the host
    around = host.representative_point()
    assert idx.locate(around.x, around.y) == ids[6]
    for part in two_parts.geoms:
        p = part.representative_point()
        assert idx.locate(p.x, p.y) == ids[11]
    between = geoms[12].representative_point()
    assert idx.locate(between.x, between.y) == ids[12]
    without_island = PolygonIndex.build(geoms[:-1], ids[:-1])
    assert without_island.locate(inner.x, inner.y) == -1  # a point in a hole is outside


def test_cells_crossed_by_many_edges(monkeypatch, lookup):
    """A comb of 2,000 teeth in one small cell and no split allowed: every lookup there scans
    hundreds of edges, and still follows the rule."""
    teeth = np.arange(2000) * 1e-6
    top = np.column_stack([np.repeat(X0 + teeth, 2) + np.tile([0, 5e-7], 2000),
                           np.tile([Y0 + 1e-4, Y0 + 1e-4], 2000)])
    top[1::2, 1] = Y0 + 2e-5  # each tooth dips to 2e-5 above the spine
    comb = Polygon(np.vstack([[X0, Y0], [X0 + 2e-3, Y0], [X0 + 2e-3, Y0 + 1e-4], top[::-1]]))
    assert comb.is_valid
    below = box(X0, Y0 - 1e-4, X0 + 2e-3, Y0)
    geoms, ids = np.array([comb, below]), np.array([1, 2])
    monkeypatch.setattr(index_module, "MAX_DEPTH", 0)
    idx = PolygonIndex.build(geoms, ids, cell_size=5e-4)
    assert idx.stats()["edges_per_item_max"] > 500
    points = probe_points(geoms)
    reference = full_scan_index(geoms, ids)
    for kind in ("random", "vertices", "near vertices"):
        x, y = points[kind]
        got = lookup(idx, x, y)
        assert (got == reference.locate_many(x, y)).all(), kind
        assert check_against_covers(got, *covering(geoms, ids, x, y)) == 0, kind


@pytest.mark.parametrize("order", [[0, 1], [1, 0]])
def test_overlapping_polygons_first_given_wins_also_in_whole_cells(order):
    """Invalid data: a small square inside a big one. Given first, the small one wins inside
    it; given second, never (the big one covers those cells whole)."""
    big = box(X0, Y0, X0 + 10 * D, Y0 + 10 * D)
    small = box(X0 + 3 * D, Y0 + 3 * D, X0 + 4 * D, Y0 + 4 * D)
    geoms, ids = np.array([small, big])[order], np.array([1, 2])[order]
    idx = PolygonIndex.build(geoms, ids, cell_size=D / 4)
    assert idx.stats()["cells_whole_in_one_polygon"] > 0
    inside_small = idx.locate(X0 + 3.5 * D, Y0 + 3.5 * D)
    assert inside_small == (1 if order == [0, 1] else 2)
    assert idx.locate(X0 + 7 * D, Y0 + 7 * D) == 2


def test_polygons_are_projected_for_nearest_only_when_candidates():
    """An index whose lookups never fall back holds no metric copy of its outlines."""
    geoms, ids = organic_town()
    idx = PolygonIndex.build(geoms, ids)
    assert shapely.is_missing(idx._metric).all()
    xmin, ymin, _, _ = shapely.total_bounds(geoms)
    found = idx.nearest(xmin - 1e-4, ymin - 1e-4, 100.0)  # about 14 m off the south-west
    assert found is not None and found[0] == ids[0] and 0 < found[1] < 100
    assert 0 < (~shapely.is_missing(idx._metric)).sum() < len(geoms)
