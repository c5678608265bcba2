"""The demo's needs run through the real loop, deterministic from the seed, on both
databases; a second run adds nothing."""

from __future__ import annotations

import pytest
from loop_support import loop_city
from sqlalchemy import func, select, update

from gridsvc.demo.loop import seed_needs
from gridsvc.storage.loop_models import Need, PointsEntry
from gridsvc.storage.models import Member

pytestmark = pytest.mark.storage


def test_demo_needs(db, settings, tmp_path):
    town = loop_city(settings, tmp_path)
    lon, lat = town.point
    with db.session() as s:
        s.execute(update(Member).where(Member.id.in_(town.members))
                  .values(lon=lon, lat=lat))
    counts = seed_needs(town.svc, seed=3, count=40)
    assert sum(counts.values()) == 40 and "skipped" not in counts
    assert counts.get("resolved", 0) > 20  # most are served and resolved
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Need)) == 40
        assert s.scalar(select(func.sum(PointsEntry.delta))) > 0
    assert list(seed_needs(town.svc, seed=3, count=40).values()) == [0]
    town.svc.close()
