"""Hostile zip uploads: bombs (one entry that expands enormously, many entries, too many
bytes in all), a header that lies about its size, and paths that escape. Each is refused with
the entry and the limit named, over the API and the command line, and leaves nothing on disk or
in the database."""

from __future__ import annotations

import dataclasses
import io
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from api_support import app_client, sample_records, sign_in, write_geojson
from click.testing import CliRunner

from gridsvc.access import cli_principal
from gridsvc.cli import cli
from gridsvc.io import archive
from gridsvc.io.boundaries import BoundaryFileError, ZipLimitExceeded, ZipLimits, read_boundaries
from gridsvc.services.boundaries import import_records
from gridsvc.services.context import Services
from gridsvc.settings import Settings
from gridsvc.storage.models import Unit

MB = 1024 * 1024
PROBLEM = "application/problem+json"
EMPTY_GEOJSON = '{"type": "FeatureCollection", "features": []}'


# --- hostile archives, built for real ---------------------------------------------------------


def ratio_bomb(folder: Path, size: int = 20 * MB) -> Path:
    """A zipped Shapefile-looking archive whose .dbf is ``size`` zero bytes (packs ~1000:1)."""
    path = folder / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("city.geojson", EMPTY_GEOJSON)
        with zf.open("bomb.dbf", "w", force_zip64=True) as entry:
            chunk = bytes(MB)
            for _ in range(size // MB):
                entry.write(chunk)
    return path


def incompressible(folder: Path, entries: int, size: int) -> Path:
    """``entries`` entries of ``size`` random bytes each (they do not pack at all)."""
    rng = np.random.default_rng(7)
    path = folder / "large.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for k in range(entries):
            zf.writestr(f"part{k}.dbf", rng.bytes(size))
    return path


def many_entries(folder: Path, count: int) -> Path:
    path = folder / "many.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("city.geojson", EMPTY_GEOJSON)
        for k in range(count - 1):
            zf.writestr(f"junk/{k}.txt", "")
    return path


def lying_header(folder: Path, real: int = 8 * MB, declared: int = 1000) -> Path:
    """One entry of ``real`` zero bytes whose local and central headers say ``declared``."""
    path = folder / "liar.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("liar.dbf", bytes(real))
    data = bytearray(path.read_bytes())
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, declared)  # uncompressed size, local header
    struct.pack_into("<I", data, central + 24, declared)  # uncompressed size, central directory
    path.write_bytes(bytes(data))
    return path


def escaping(folder: Path) -> Path:
    path = folder / "evil.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("city.geojson", EMPTY_GEOJSON)
        zf.writestr("../../evil.geojson", EMPTY_GEOJSON)
    return path


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder every upload and unpacked zip goes to, so a test can see that
    nothing was left behind."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def leftovers(scratch: Path) -> list[str]:
    return sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*"))


# --- reading ------------------------------------------------------------------------------------


def test_a_highly_compressible_entry_is_refused_before_unpacking(tmp_path, scratch) -> None:
    with pytest.raises(ZipLimitExceeded, match="GRIDSVC_ZIP_MAX_RATIO") as refused:
        read_boundaries(ratio_bomb(tmp_path))  # the default limits
    assert (refused.value.entry, refused.value.setting, refused.value.limit) == (
        "bomb.dbf", "GRIDSVC_ZIP_MAX_RATIO", 200)
    assert "'bomb.dbf'" in str(refused.value) and "bomb.zip" in str(refused.value)
    assert leftovers(scratch) == []


def test_too_many_bytes_in_all_is_refused(tmp_path, scratch) -> None:
    large = incompressible(tmp_path, entries=3, size=2 * MB)
    limits = ZipLimits(max_bytes=5 * MB)
    with pytest.raises(ZipLimitExceeded, match="5 MB") as refused:
        read_boundaries(large, zip_limits=limits)
    assert (refused.value.entry, refused.value.setting, refused.value.limit) == (
        "part2.dbf", "GRIDSVC_ZIP_MAX_MB", 5)
    assert leftovers(scratch) == []
    # within the limit the same archive unpacks (and then holds no GIS file)
    with pytest.raises(BoundaryFileError, match=r"holds no \.shp"):
        read_boundaries(large, zip_limits=ZipLimits(max_bytes=6 * MB))


def test_too_many_entries_is_refused(tmp_path, scratch) -> None:
    with pytest.raises(ZipLimitExceeded, match="1,001 entries") as refused:
        read_boundaries(many_entries(tmp_path, 1001))
    assert (refused.value.entry, refused.value.setting) == (None, "GRIDSVC_ZIP_MAX_ENTRIES")
    assert read_boundaries(many_entries(tmp_path, 1000)).records == []  # at the limit: fine
    assert leftovers(scratch) == []


class CountingReads:
    """Counts the bytes that come out of zip entries, however they are read."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.total = 0
        original = zipfile.ZipExtFile.read

        def read(entry, n=-1):  # type: ignore[no-untyped-def]
            data = original(entry, n)
            self.total += len(data)
            return data

        monkeypatch.setattr(zipfile.ZipExtFile, "read", read)


def test_unpacking_counts_real_bytes_and_stops_at_the_limit(tmp_path, scratch,
                                                             monkeypatch) -> None:
    """With the header checks switched off (as if the headers lied), counting the bytes that
    come out still stops the bomb as soon as it passes a limit, far short of its 20 MB."""
    monkeypatch.setattr(archive, "_check_declared", lambda *args: None)
    bomb = ratio_bomb(tmp_path)
    packed = zipfile.ZipFile(bomb).getinfo("bomb.dbf").compress_size
    reads = CountingReads(monkeypatch)
    with pytest.raises(ZipLimitExceeded, match="GRIDSVC_ZIP_MAX_RATIO"):
        read_boundaries(bomb)
    assert reads.total <= 200 * packed + archive.CHUNK < 20 * MB
    reads.total = 0
    with pytest.raises(ZipLimitExceeded, match="GRIDSVC_ZIP_MAX_MB"):
        read_boundaries(bomb, zip_limits=ZipLimits(max_bytes=3 * MB, max_ratio=10**6))
    assert reads.total <= 3 * MB + archive.CHUNK + len(EMPTY_GEOJSON)
    assert leftovers(scratch) == []


def test_a_header_that_lies_about_the_size_is_refused(tmp_path, scratch, monkeypatch) -> None:
    liar = lying_header(tmp_path)
    assert zipfile.ZipFile(liar).getinfo("liar.dbf").file_size == 1000  # passes the checks
    reads = CountingReads(monkeypatch)
    with pytest.raises(BoundaryFileError, match="not a valid zip file"):
        read_boundaries(liar)
    assert reads.total <= 1000  # never more than the header allowed
    assert leftovers(scratch) == []


def test_escaping_paths_are_still_refused(tmp_path, scratch) -> None:
    with pytest.raises(BoundaryFileError, match="outside the archive"):
        read_boundaries(escaping(tmp_path))
    assert leftovers(scratch) == [] and not (tmp_path.parent / "evil.geojson").exists()


# --- over the API and the command line, on both databases ---------------------------------------


def unit_count(settings: Settings) -> int:
    svc = Services.from_settings(settings)
    try:
        with svc.db.session() as session:
            return session.query(Unit).count()
    finally:
        svc.close()


@pytest.fixture
def stored(settings: Settings) -> Settings:
    """The test database holding the small sample tree."""
    svc = Services.from_settings(settings)
    try:
        assert import_records(svc, sample_records(), viewer=cli_principal()).stored
    finally:
        svc.close()
    return settings


def _upload(path: Path) -> dict:
    return {"data": {"file": (io.BytesIO(path.read_bytes()), path.name)},
            "content_type": "multipart/form-data"}


@pytest.mark.parametrize("endpoint", ["/api/v1/boundaries/import", "/api/v1/boundaries/validate"])
def test_api_refuses_hostile_zips(stored: Settings, tmp_path: Path, scratch: Path,
                                  endpoint: str) -> None:
    before = unit_count(stored)
    small = dataclasses.replace(stored, zip_max_mb=5, zip_max_entries=50)
    with app_client(small) as client:
        sign_in(client, small, "admin")
        cases = {
            "bomb.zip": ("bomb.dbf", "GRIDSVC_ZIP_MAX_RATIO", 200),
            "large.zip": ("part2.dbf", "GRIDSVC_ZIP_MAX_MB", 5),
            "many.zip": (None, "GRIDSVC_ZIP_MAX_ENTRIES", 50),
        }
        archives = [ratio_bomb(tmp_path), incompressible(tmp_path, 3, 2 * MB),
                    many_entries(tmp_path, 51)]
        for path in archives:
            resp = client.post(endpoint, **_upload(path))
            assert resp.status_code == 413 and resp.mimetype == PROBLEM, resp.get_data()[:300]
            body = resp.get_json()
            entry, setting, limit = cases[path.name]
            assert body["type"] == "/problems/archive-too-large"
            assert (body.get("entry"), body["setting"], body["limit"]) == (entry, setting, limit)
            assert path.name in body["detail"] and setting in body["detail"]
            assert str(tmp_path) not in body["detail"]  # no server folder in the message
        evil = client.post(endpoint, **_upload(escaping(tmp_path)))
        assert evil.status_code == 400 and evil.get_json()["type"] == "/problems/invalid-input"
        assert "outside the archive" in evil.get_json()["detail"]
        liar = client.post(endpoint, **_upload(lying_header(tmp_path)))
        assert liar.status_code == 400 and "not a valid zip" in liar.get_json()["detail"]
    assert leftovers(scratch) == []
    assert unit_count(stored) == before


def test_cli_refuses_hostile_zips(stored: Settings, tmp_path: Path, scratch: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    before = unit_count(stored)
    monkeypatch.setenv("GRIDSVC_DATABASE_URL", stored.database_url)
    monkeypatch.setenv("GRIDSVC_ZIP_MAX_ENTRIES", "20")
    runner = CliRunner()
    bomb = runner.invoke(cli, ["import-boundaries", str(ratio_bomb(tmp_path))])
    assert bomb.exit_code == 1
    assert "'bomb.dbf'" in bomb.output and "GRIDSVC_ZIP_MAX_RATIO" in bomb.output
    many = runner.invoke(cli, ["validate", str(many_entries(tmp_path, 21))])
    assert many.exit_code == 1 and "GRIDSVC_ZIP_MAX_ENTRIES" in many.output
    assert "limit of 20" in many.output
    assert leftovers(scratch) == []
    assert unit_count(stored) == before
    # an honest zipped Shapefile of the same tree still goes through
    good = tmp_path / "tree.zip"
    with zipfile.ZipFile(good, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(write_geojson(sample_records(), tmp_path / "tree.geojson"), "tree.geojson")
    again = runner.invoke(cli, ["import-boundaries", str(good)])
    assert again.exit_code == 0, again.output
    assert f"{before} unchanged" in again.output
