"""The gridsvc command line on both databases: exit codes and what it prints."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
from api_support import ALL_CODES, G1, sample_records, write_geojson
from click.testing import CliRunner
from shapely.geometry import box

from gridsvc.cli import cli

pytestmark = pytest.mark.storage


@pytest.fixture
def run(settings, monkeypatch):
    monkeypatch.setenv("GRIDSVC_DATABASE_URL", settings.database_url)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    assert invoke("init-db").exit_code == 0
    return invoke


def test_import_reimport_validate_export(run, tmp_path):
    path = write_geojson(sample_records(), tmp_path / "tree.geojson")
    first = run("import-boundaries", str(path))
    assert first.exit_code == 0, first.output
    assert f"stored: {len(ALL_CODES)} created, 0 updated, 0 unchanged" in first.output
    again = run("import-boundaries", str(path))
    assert f"0 created, 0 updated, {len(ALL_CODES)} unchanged" in again.output
    assert run("validate").exit_code == 0
    out = tmp_path / "out.gpkg"
    exported = run("export", str(out))
    assert exported.exit_code == 0 and out.exists()
    assert f"wrote {len(ALL_CODES)} units" in exported.output
    subtree = run("export", str(tmp_path / "g1.geojson"), "--unit", G1)
    features = json.loads((tmp_path / "g1.geojson").read_text(encoding="utf-8"))["features"]
    assert subtree.exit_code == 0 and len(features) == 4  # grid, 2 buildings, 1 household


def test_bad_file_exits_non_zero_and_stores_nothing(run, tmp_path):
    records = sample_records()
    records.append(dataclasses.replace(records[6], row=10, code=G1 + "09",
                                       geometry=box(120.9006, 32.0006, 120.9012, 32.0012)))
    path = write_geojson(records, tmp_path / "bad.geojson")
    result = run("import-boundaries", str(path))
    assert result.exit_code != 0
    assert "overlapping-siblings" in result.output and "nothing was stored" in result.output
    report = run("validate", str(path), "--json")
    assert report.exit_code == 1
    data = json.loads(report.output[report.output.index("{"):])
    assert data["ok"] is False and data["errors"] >= 1
    assert run("import-boundaries", str(write_geojson(sample_records()[:1],
                                                      tmp_path / "one.geojson")),
               "--dry-run").output.strip().endswith("dry run: nothing stored")


def test_field_map_option(run, tmp_path):
    path = tmp_path / "tree.geojson"
    write_geojson(sample_records(), path)
    text = path.read_text(encoding="utf-8").replace('"code"', '"GRID_ID"')
    path.write_text(text, encoding="utf-8")
    assert run("import-boundaries", str(path), "--dry-run").exit_code != 0
    mapped = run("import-boundaries", str(path), "--map", "code=GRID_ID")
    assert mapped.exit_code == 0, mapped.output
    assert run("import-boundaries", str(path), "--map", "nonsense").exit_code == 2


def test_demo_writes_files_without_loading(run, tmp_path):
    result = run("demo", "--out", str(tmp_path / "demo"), "--no-load")
    assert result.exit_code == 0
    assert (tmp_path / "demo" / "city.geojson").exists()
    assert (tmp_path / "demo" / "gazetteer.csv").exists()


def test_python_m_gridsvc():
    done = subprocess.run([sys.executable, "-m", "gridsvc", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    for command in ("init-db", "import-boundaries", "validate", "export", "demo", "serve"):
        assert command in done.stdout


def test_demo_loads_city_and_members_idempotently(run):
    first = run("demo")
    assert first.exit_code == 0 and "demo members: rows" in first.output
    again = run("demo")
    assert "0 created, 0 updated" in again.output and "created 0, updated 0" in again.output
