"""The PostGIS baseline: the same buildings and points joined with ``ST_Covers`` on a GiST index.

A throwaway database ``gridsvc_bench_<random>`` is created on the server (``CREATE EXTENSION
postgis``) and dropped at the end, whatever happens. The buildings go in with their chain as
parent columns (``up1`` = grid row, ``up2`` = community row, ...; -1 past the root), the points
with binary COPY (the exact doubles the index sees); both tables get a GiST index. The timed
query returns every (point, building, chain) match to the client:

    COPY (SELECT p.id, b.row, b.up1, ... FROM buildings b CROSS JOIN LATERAL
          (SELECT id FROM points p WHERE ST_Covers(b.geom, p.geom) OFFSET 0) p)
    TO STDOUT (FORMAT binary)

The LATERAL form (``OFFSET 0`` keeps it from being flattened) drives the join from the 74,000
buildings into the points' GiST index. Written as a plain ``JOIN ... ON ST_Covers``, the
planner (PostgreSQL 15, PostGIS 3) instead probes the buildings' index once per point, a
million probes, and takes about 6x longer (30 s against 5 s for the city); the baseline gets
the faster plan.

ST_Covers counts the boundary as inside, so a point on an edge or vertex shared by two
buildings matches both; the agreement check accepts the index's answer there when it is one
of them, and asks for equality everywhere else.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import psycopg
import shapely
from bench_index import Case, agreement_counts
from figures import Agreement, Figure
from psycopg import sql

SERVER = "postgresql://postgres@127.0.0.1:5432"
REPEAT = 2  # timed joins; the fastest counts
PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no header extension
PGCOPY_TRAILER = b"\xff\xff"


def server_answers(server: str = SERVER) -> str | None:
    """None when the server takes connections, else why not."""
    try:
        with psycopg.connect(f"{server}/postgres", connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]
    return None


@contextmanager
def throwaway_database(server: str = SERVER) -> Iterator[psycopg.Connection]:
    """A connection to a new PostGIS database, dropped on the way out."""
    name = f"gridsvc_bench_{secrets.token_hex(4)}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(f"{server}/{name}", autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
            yield conn
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                          .format(sql.Identifier(name)))


def binary_copy(columns: list[np.ndarray], dtypes: list[str]) -> bytes:
    """Rows in PostgreSQL's binary COPY format from equal-length arrays of fixed-size values
    (``dtypes`` big-endian numpy codes such as '>i4', '>f8'); no NULLs."""
    fields = [("count", ">i2")]
    for k, code in enumerate(dtypes):
        fields += [(f"len{k}", ">i4"), (f"v{k}", code)]
    rows = np.empty(len(columns[0]), dtype=fields)
    rows["count"] = len(columns)
    for k, (values, code) in enumerate(zip(columns, dtypes, strict=True)):
        rows[f"len{k}"] = np.dtype(code).itemsize
        rows[f"v{k}"] = values
    return PGCOPY_HEADER + rows.tobytes() + PGCOPY_TRAILER


def parse_int_rows(data: bytes, n_columns: int) -> np.ndarray:
    """The int4 rows of a binary COPY TO (no NULLs) as an (n, n_columns) int64 array."""
    fields = [("count", ">i2")]
    for k in range(n_columns):
        fields += [(f"len{k}", ">i4"), (f"v{k}", ">i4")]
    body = data[len(PGCOPY_HEADER):len(data) - len(PGCOPY_TRAILER)]
    rows = np.frombuffer(body, dtype=fields)
    return np.column_stack([rows[f"v{k}"].astype(np.int64) for k in range(n_columns)])


def load_buildings(conn: psycopg.Connection, case: Case) -> list[str]:
    """The buildings with their chain as columns up1..upN; returns the chain column names."""
    chain = case.parents.chain_matrix(case.rows)  # row, parent, grandparent, ...
    ups = [f"up{k}" for k in range(1, chain.shape[1])]
    conn.execute(f"CREATE TABLE buildings (row int4 PRIMARY KEY, "
                 f"{', '.join(f'{u} int4 NOT NULL' for u in ups)}, "
                 f"geom geometry(Geometry, 4326) NOT NULL)")
    wkb = shapely.to_wkb(shapely.set_srid(case.geoms, 4326), hex=True, include_srid=True)
    lines = ("\t".join(map(str, c)) + f"\t{w}\n" for c, w in zip(chain.tolist(), wkb,
                                                                  strict=True))
    with conn.cursor().copy(f"COPY buildings (row, {', '.join(ups)}, geom) FROM STDIN") as cp:
        cp.write("".join(lines))
    conn.execute("CREATE INDEX ON buildings USING gist (geom)")
    conn.execute("ANALYZE buildings")
    return ups


def load_points(conn: psycopg.Connection, table: str, lon: np.ndarray, lat: np.ndarray) -> None:
    """Points 0..n-1 by binary COPY of their doubles, then a geometry column and GiST index."""
    conn.execute(f"CREATE TABLE {table}_raw (id int4, lon float8, lat float8)")
    data = binary_copy([np.arange(len(lon)), lon, lat], [">i4", ">f8", ">f8"])
    with conn.cursor().copy(f"COPY {table}_raw FROM STDIN (FORMAT binary)") as cp:
        cp.write(data)
    conn.execute(f"CREATE TABLE {table} AS SELECT id, "
                 f"ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geometry(Point, 4326) AS geom "
                 f"FROM {table}_raw")
    conn.execute(f"DROP TABLE {table}_raw")
    conn.execute(f"CREATE INDEX ON {table} USING gist (geom)")
    conn.execute(f"ANALYZE {table}")


def covers_join(conn: psycopg.Connection, table: str, ups: list[str]) -> tuple[float, np.ndarray]:
    """Seconds for the ST_Covers join to reach the client, and its rows
    (point, building row, up1, ...)."""
    query = (f"COPY (SELECT p.id, b.row, {', '.join(f'b.{u}' for u in ups)} "
             f"FROM buildings b CROSS JOIN LATERAL (SELECT id FROM {table} p "
             f"WHERE ST_Covers(b.geom, p.geom) OFFSET 0) p) TO STDOUT (FORMAT binary)")
    start = time.perf_counter()
    with conn.cursor().copy(query) as cp:
        data = b"".join(bytes(chunk) for chunk in cp)
    rows = parse_int_rows(data, 2 + len(ups))
    return time.perf_counter() - start, rows


def check(name: str, case: Case, got: np.ndarray, matches: np.ndarray) -> Agreement:
    """Agreement of the index's rows ``got`` with the join's matches; a match whose chain
    columns differ from the index's chain for the same building counts as a disagreement."""
    counts = agreement_counts(got, matches[:, 0], matches[:, 1])
    index_chain = case.parents.chain_matrix(matches[:, 1])
    counts["disagree"] += int((index_chain != matches[:, 1:]).any(axis=1).sum())
    return Agreement.from_counts(name, counts)


def postgis_figures(case: Case, rows: np.ndarray, index_seconds: float, server: str = SERVER,
                    part: str = "postgis") -> tuple[list[Figure], list[Agreement], list[str]]:
    """The join timed against the index's bulk time (``index_seconds`` for the same points,
    whose rows are ``rows``), the agreement on the random points and the polygon vertices
    (``case.vertices()``), and a note on the load time; figures labelled ``part``."""
    vertices, which = case.vertices()
    label = "" if part == "postgis" else f" [{part}]"
    with throwaway_database(server) as conn:
        start = time.perf_counter()
        ups = load_buildings(conn, case)
        load_points(conn, "points", case.lon, case.lat)
        load_s = time.perf_counter() - start
        seconds, matches = min((covers_join(conn, "points", ups) for _ in range(REPEAT)),
                               key=lambda run: run[0])
        load_points(conn, "vertices", vertices[:, 0], vertices[:, 1])
        _, vertex_matches = covers_join(conn, "vertices", ups)
    figures = [Figure(part, f"bulk: {len(case.lon):,} points + chain", index_seconds, "s",
                      "PostGIS ST_Covers join + chain", seconds)]
    agreements = [
        check(f"PostGIS ST_Covers, random points{label}", case, rows, matches),
        check(f"PostGIS ST_Covers, {which}{label}", case,
              case.index.locate_many(vertices[:, 0], vertices[:, 1]), vertex_matches),
    ]
    notes = [f"PostGIS{label}: loading the polygons and points and their GiST indexes took "
             f"{load_s:.1f} s (not in the join time)"]
    return figures, agreements, notes
