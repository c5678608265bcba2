"""What every service call needs: settings, the hierarchy and the database, built once, plus
the process-local indexes that are derived from stored data (built on first use)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from gridsvc.hierarchy import Hierarchy, load_hierarchy
from gridsvc.settings import Settings
from gridsvc.storage.engine import Database

if TYPE_CHECKING:
    from gridsvc.geocode.matcher import Gazetteer
    from gridsvc.services.live import Live
    from gridsvc.services.locator import CityIndex


@dataclass
class Services:
    settings: Settings
    hierarchy: Hierarchy
    db: Database

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        return cls(settings, load_hierarchy(settings.levels), Database.from_settings(settings))

    @cached_property
    def locator(self) -> Live[CityIndex]:
        """The spatial index of the micro-grids, rebuilt when boundaries change."""
        from gridsvc.services.live import Live
        from gridsvc.services.locator import build_city_index

        return Live(self.db, ("boundaries",), lambda: build_city_index(self.db, self.hierarchy),
                    self.settings.index_check_seconds)

    @cached_property
    def geocoder(self) -> Live[Gazetteer]:
        """The address matcher over the stored gazetteer, rebuilt when it changes."""
        from gridsvc.services.gazetteer import build_gazetteer
        from gridsvc.services.live import Live

        return Live(self.db, ("gazetteer", "boundaries"),
                    lambda: build_gazetteer(self.db, self.hierarchy),
                    self.settings.index_check_seconds)

    def warm(self) -> None:
        """Build the spatial index and the gazetteer now, then close every database connection
        this used: a web server does this once in its master process, and the workers it forks
        start with both in memory (shared copy-on-write) and no connection of the master's."""
        self.locator.current().warm()
        self.geocoder.current()
        self.db.dispose()

    def after_fork(self) -> None:
        """In a forked child process: forget the pooled connections inherited from the parent,
        without closing them (they are the parent's); the child opens its own."""
        self.db.engine.dispose(close=False)

    def close(self) -> None:
        self.db.dispose()
