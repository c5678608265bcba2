"""The load test behind ``make load``: a fixed number of requests in a realistic mix of callers
against ``gridsvc serve`` (gunicorn) on loopback, the same number on the framework's floor as
the baseline, and a check that the audit log recorded every personal read.

The database is the small demo city (the scale ``gridsvc demo`` registers members for) from
``http_load.demo_database``. Before the server starts, ``accounts.create_token`` makes the
callers' tokens there: a staff and a planner token scoped to the first community, and member
tokens for some of the members living in it; they are revoked at the end. Of every 100
requests (``KINDS``): public lookups by point (a point inside a building) and by standard
address, staff member lists and single members, members reading ``/members/me``, planner
unit lists (``?parent=``) and single units, and OGC API items pages of the micro-grid
collection (left out, with a note, when ``/ogc`` does not answer).

``wrk`` with ``wrk_mix.lua`` sends every request of the list exactly once: each thread has
one keep-alive connection and stops itself after the answer to its last request; the figures
are wrk's, for the requests only (see ``run_list``). A warm-up pass of the mix comes first. The
audit entries of the run's tokens are counted before and after the measured pass: the
difference must equal the personal reads in it (and no entry for the planner's reads).
"""

from __future__ import annotations

import math
import os
import random
import secrets
import signal
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from figures import Check, Figure
from http_load import (
    FLOOR_PATH,
    OUT,
    WORKERS,
    Load,
    demo_database,
    get,
    running_server,
    wrk_summary,
)
from sqlalchemy import select

from gridsvc.access import cli_principal
from gridsvc.services import accounts, audit, scope
from gridsvc.services.context import Services
from gridsvc.settings import Settings
from gridsvc.storage import units as q
from gridsvc.storage.models import Member, Unit

WRK_MIX = Path(__file__).with_name("wrk_mix.lua")
SCALE = "small"  # the city scale has no members
THREADS = 4  # wrk threads, one keep-alive connection each: two per server worker
MEMBER_TOKENS = 10
WARM_UP = 500  # requests of the mix before the measured pass
SEED = 1


@dataclass(frozen=True)
class Kind:
    label: str
    weight: int  # requests in every 100
    personal: bool = False  # a read of personal data: one audit entry each


KINDS = {
    "point": Kind("public lookups by point", 50),
    "address": Kind("public lookups by address", 15),
    "staff_list": Kind("staff: member lists", 8, personal=True),
    "staff_member": Kind("staff: single members", 8, personal=True),
    "member_me": Kind("member: /members/me", 5, personal=True),
    "planner_list": Kind("planner: units?parent=", 5),
    "planner_unit": Kind("planner: single units", 5),
    "ogc_items": Kind("planner: OGC items pages", 4),
}


@dataclass(frozen=True)
class Call:
    kind: str
    path: str
    token: str | None = None

    def line(self) -> str:
        """The request as a line of ``wrk_mix.lua``'s list."""
        return f"{self.kind}\tGET\t{self.path}\t{f'Bearer {self.token}' if self.token else '-'}"


# --- the callers and their requests ---------------------------------------------------------


@dataclass
class Callers:
    community: Unit  # the staff's and planner's scope
    staff: str  # the tokens, in clear
    planner: str
    members: list[str]
    member_ids: list[int]  # the members the staff token sees
    names: list[str]  # the tokens' names: their audit entries' actor


@contextmanager
def bench_tokens(svc: Services) -> Iterator[Callers]:
    """Tokens for the first community's staff and planner and some of its members, revoked
    when done."""
    run = secrets.token_hex(4)
    made: list[int] = []

    def create(role: str, **scope_: object) -> str:
        secret, row = accounts.create_token(svc, f"bench load {run} {role}", role, **scope_)
        made.append(row["id"])
        return secret

    try:
        with svc.db.session() as session:
            community = session.scalars(select(Unit).where(Unit.level == 2)
                                        .order_by(Unit.code).limit(1)).one()
            session.expunge(community)
        staff = create("staff", unit=community.code)
        viewer = accounts.verify_token(svc, staff)
        assert viewer is not None
        with svc.db.session() as session:
            member_ids = list(session.scalars(select(Member.id)
                                              .where(scope.member_filter(viewer))
                                              .order_by(Member.id)))
        if not member_ids:
            raise RuntimeError(f"no member lives in community {community.code}: the load mix "
                               f"needs the {SCALE} demo city with its members")
        members = [create("member", member_id=m) for m in member_ids[:MEMBER_TOKENS]]
        yield Callers(community, staff, create("planner", unit=community.code), members,
                      member_ids, [f"bench load {run} {r}" for r in ("staff", "planner",
                                                                    "member")])
    finally:
        for token_id in made:
            accounts.revoke_token(svc, token_id)


def calls_by_kind(svc: Services, callers: Callers) -> dict[str, list[Call]]:
    """Every kind's requests, in a stable order (each kind cycles through its list)."""
    with svc.db.session() as session:
        units = session.execute(select(Unit.code, Unit.level)
                                .where(q.subtree_filter(callers.community.path))
                                .order_by(Unit.level, Unit.code)).all()
    micro = svc.hierarchy.micro_grid
    parents = [code for code, level in units if level <= micro.level]
    singles = [code for code, level in units if level > callers.community.level]
    buildings = sum(1 for _, level in units if level == micro.level)
    gazetteer = svc.geocoder.current().entries
    staff, planner = callers.staff, callers.planner
    return {
        "point": [Call("point", f"/api/v1/lookup?lon={e.lon!r}&lat={e.lat!r}&coordsys=wgs84")
                  for e in gazetteer],
        "address": [Call("address", f"/api/v1/lookup?address={quote(e.address)}"
                                    + (f"&district={quote(e.district)}" if e.district else ""))
                    for e in gazetteer],
        "staff_list": [Call("staff_list", f"/api/v1/members?limit=20&offset={o}", staff)
                       for o in range(0, len(callers.member_ids), 20)]
                      + [Call("staff_list", f"/api/v1/members?unit={code}&limit=20", staff)
                         for code, level in units if level == callers.community.level + 1],
        "staff_member": [Call("staff_member", f"/api/v1/members/{m}", staff)
                         for m in callers.member_ids],
        "member_me": [Call("member_me", "/api/v1/members/me", t) for t in callers.members],
        "planner_list": [Call("planner_list", f"/api/v1/units?parent={code}", planner)
                         for code in parents],
        "planner_unit": [Call("planner_unit", f"/api/v1/units/{code}", planner)
                         for code in singles],
        "ogc_items": [Call("ogc_items", f"/ogc/collections/{micro.key}/items?limit=50"
                                        f"&offset={o}", planner)
                      for o in range(0, buildings, 50)],
    }


def mix(calls: dict[str, list[Call]], total: int, seed: int = SEED) -> list[Call]:
    """``total`` requests in the kinds' proportions (largest remainder), each kind cycling
    through its requests, in a seeded random order."""
    weights = {kind: KINDS[kind].weight for kind in calls}
    whole = sum(weights.values())
    counts = {kind: total * w // whole for kind, w in weights.items()}
    by_remainder = sorted(weights, key=lambda kind: -(total * weights[kind] % whole))
    for kind in by_remainder[:total - sum(counts.values())]:
        counts[kind] += 1
    listed = [calls[kind][i % len(calls[kind])] for kind, n in counts.items() for i in range(n)]
    random.Random(seed).shuffle(listed)
    return listed


# --- running a list -------------------------------------------------------------------------


@dataclass
class ListRun:
    """One pass over a request list: wrk's figures, and per kind the requests listed, answered
    and answered with a status other than 2xx."""

    load: Load
    listed: dict[str, int]
    answers: dict[str, int] = field(default_factory=dict)
    non_2xx: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.listed.values())

    @property
    def answered_2xx(self) -> int:
        return sum(self.answers.values()) - sum(self.non_2xx.values())

    def problems(self) -> list[str]:
        """Per kind that did not answer every request with 2xx: how it went."""
        return [f"{KINDS[k].label if k in KINDS else k}: {self.answers.get(k, 0):,} of {n:,} "
                f"answered, {self.non_2xx.get(k, 0):,} of them not 2xx"
                for k, n in self.listed.items()
                if self.answers.get(k, 0) != n or self.non_2xx.get(k, 0)]


def run_list(base: str, calls: list[Call], seconds_cap: float) -> ListRun:
    """Send every request of ``calls`` once with wrk (``THREADS`` connections, one request in
    flight each). wrk's main thread sleeps for --duration whatever its threads do, so once
    every thread has printed that it stopped, it gets SIGINT (its Ctrl-C): the run then ends
    and its summary times the requests only. ``seconds_cap`` bounds a run that hangs."""
    threads = min(THREADS, len(calls))
    with tempfile.NamedTemporaryFile("w", suffix=".tsv") as listing:  # 0600: it holds tokens
        listing.write("".join(c.line() + "\n" for c in calls))
        listing.flush()
        proc = subprocess.Popen(
            ["wrk", "--threads", str(threads), "--connections", str(threads), "--duration",
             f"{math.ceil(seconds_cap)}s", "--timeout", "10s", "--script", str(WRK_MIX),
             base, "--", listing.name, str(threads)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        output, stopped = [], set()
        for line in proc.stdout:
            output.append(line)
            if line.startswith("stopped "):
                stopped.add(line.split()[1])
                if len(stopped) == threads:
                    proc.send_signal(signal.SIGINT)
        proc.wait()
    text = "".join(output)
    try:
        summary = wrk_summary(text)
    except StopIteration:
        raise RuntimeError(f"wrk exited with {proc.returncode} without figures:\n"
                           f"{text[-2000:]}") from None
    return ListRun(Load.from_wrk(summary), dict(Counter(c.kind for c in calls)),
                   summary["answers"], summary["non_2xx_by_kind"])


def answers_ok(base: str, call: Call) -> tuple[bool, str]:
    headers = {"Authorization": f"Bearer {call.token}"} if call.token else {}
    try:
        status, body = get(base, call.path, timeout=60, headers=headers)
    except OSError as exc:
        return False, str(exc)
    return 200 <= status < 300, f"HTTP {status}: {body[:200]!r}"


def audit_entries(svc: Services, names: list[str]) -> int:
    """How many audit entries name one of these actors."""
    admin = cli_principal()
    return sum(audit.query(svc, viewer=admin, actor=name, limit=1)["total"] for name in names)


# --- the test -------------------------------------------------------------------------------


@dataclass
class LoadTest:
    floor: ListRun
    mix: ListRun
    personal_reads: int  # requests of the measured mix that read personal data
    audit_entries: int  # entries the run's tokens got during the measured pass
    notes: list[str]

    def figures(self) -> list[Figure]:
        mix, floor, n = self.mix.load, self.floor.load, self.mix.total
        return [
            Figure("load", f"mix of {n:,} requests", mix.per_second, "req/s",
                   f"GET {FLOOR_PATH} x {n:,}", floor.per_second, higher_is_better=True),
            Figure("load", "mix, median latency", mix.p50_ms, "ms", f"GET {FLOOR_PATH} median",
                   floor.p50_ms),
            Figure("load", "mix, p99 latency", mix.p99_ms, "ms", f"GET {FLOOR_PATH} p99",
                   floor.p99_ms),
        ]

    def checks(self) -> list[Check]:
        return [
            Check("load: mix requests answered 2xx", self.mix.total, self.mix.answered_2xx),
            Check(f"load: GET {FLOOR_PATH} requests answered 2xx", self.floor.total,
                  self.floor.answered_2xx),
            Check("load: audit entries for the mix's personal reads", self.personal_reads,
                  self.audit_entries),
        ]


def load_test(total: int, database: Path | None = None, log: Path = OUT / "server-load.log",
              seed: int = SEED) -> LoadTest:
    """Serve ``database`` (default: the small demo city in bench/out) and measure ``total``
    requests of the mix against ``total`` on the floor."""
    database = database or demo_database(SCALE, seed)
    svc = Services.from_settings(Settings.from_env(database_url=f"sqlite:///{database}"))
    seconds_cap = max(60.0, total / 50)  # wrk's --duration: only a bound
    notes = []
    with bench_tokens(svc) as callers:
        calls = calls_by_kind(svc, callers)
        svc.db.dispose()
        with running_server(database, log) as base:
            probe = calls["ogc_items"][0]
            ok, answer = answers_ok(base, probe)
            if not ok:
                del calls["ogc_items"]
                notes.append(f"load: OGC items pages left out of the mix: GET {probe.path} "
                             f"answered {answer}")
            warm = run_list(base, mix(calls, min(total, WARM_UP), seed + 1), seconds_cap)
            notes += [f"load: WARM-UP FAILURES: {p}" for p in warm.problems()]
            before = audit_entries(svc, callers.names)
            floor = run_list(base, [Call("floor", FLOOR_PATH)] * total, seconds_cap)
            listed = mix(calls, total, seed)
            mixed = run_list(base, listed, seconds_cap)
            after = audit_entries(svc, callers.names)
    personal = sum(1 for c in listed if KINDS[c.kind].personal)
    shares = ", ".join(f"{mixed.listed[k]:,} {kind.label}" for k, kind in KINDS.items()
                       if k in mixed.listed)
    notes += [
        f"load: the mix of {total:,}: {shares}; {personal:,} personal reads (audited); staff "
        f"and planner scoped to community {callers.community.code}, "
        f"{len(callers.members)} member tokens",
        f"load: `gridsvc serve --workers {WORKERS}` on {os.cpu_count()} cores with "
        f"GRIDSVC_LOOKUP_RATE_LIMIT=0, wrk on the same machine with {THREADS} threads of one "
        f"keep-alive connection each; a warm-up pass of {warm.total:,} requests first",
    ]
    for name, run in (("mix", mixed), (f"GET {FLOOR_PATH}", floor)):
        notes += [f"load: {name}: FAILED REQUESTS: {p}" for p in run.problems()]
    return LoadTest(floor, mixed, personal, after - before, notes)
