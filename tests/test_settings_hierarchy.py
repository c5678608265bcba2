"""Settings come from GRIDSVC_* variables, checked at start; level names are configuration,
not code."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from gridsvc.access import cli_principal
from gridsvc.hierarchy import DEFAULT_LEVELS, HierarchyError, load_hierarchy
from gridsvc.settings import Settings, SettingsError, choice

NANTONG = json.dumps([
    {"level": 1, "name": "社区大党委"}, {"level": 2, "name": "党总支"},
    {"level": 3, "name": "网格党支部"}, {"level": 4, "name": "党小组"},
    {"level": 5, "name": "微网格"},
], ensure_ascii=False)


def test_settings_from_environment():
    s = Settings.from_env({"GRIDSVC_DATABASE_URL": "postgresql://x/y",
                           "GRIDSVC_CONTAIN_TOLERANCE_M": "2.5", "GRIDSVC_BATCH_LIMIT": "50"})
    assert (s.database_url, s.contain_tolerance_m, s.batch_limit) == ("postgresql://x/y", 2.5, 50)
    assert Settings.from_env({}, instance_dir="/srv/g").database_url == \
        "sqlite:////srv/g/gridsvc.sqlite"
    with pytest.raises(ValueError, match="GRIDSVC_BATCH_LIMIT"):
        Settings.from_env({"GRIDSVC_BATCH_LIMIT": "many"})


@pytest.mark.parametrize(("variable", "value", "message"), [
    # enumerated
    ("OGC_PRECONDITION", "optinal", "is not one of: required, optional"),
    ("BASEMAP", "google", "is not one of: osm, tianditu, xyz, none"),
    ("BASEMAP_COORDSYS", "bd09", "is not one of: wgs84, cgcs2000, gcj02"),
    # int, with a range
    ("BATCH_LIMIT", "many", "is not a valid int"),
    ("BATCH_LIMIT", "2.5", "is not a valid int"),
    ("BATCH_LIMIT", "0", "must be at least 1"),
    ("AUDIT_RETENTION_DAYS", "-3", "must be at least 1"),
    ("PROXY_HOPS", "11", "must be at least 0 and at most 10"),
    # float
    ("NEAREST_RADIUS_M", "far", "is not a valid float"),
    ("NEAREST_RADIUS_M", "nan", "must be a finite number"),
    ("TOKEN_CACHE_SECONDS", "-1", "must be at least 0"),
    # URL
    ("DATABASE_URL", "mysql://x/y", "is not a URL of scheme sqlite://, postgresql://"),
    ("DATABASE_URL", "instance/gridsvc.sqlite", "is not a URL"),
    ("BASEMAP_URL", "ftp://tiles/{z}/{x}/{y}.png", "is not a URL of scheme http://, https://"),
    # rate limit
    ("LOOKUP_RATE_LIMIT", "lots", "is not a rate limit"),
])
def test_a_wrong_setting_is_refused_naming_it(variable, value, message):
    with pytest.raises(SettingsError) as err:
        Settings.from_env({f"GRIDSVC_{variable}": value})
    assert str(err.value).startswith(f"GRIDSVC_{variable}={value!r} {message}")


def test_good_settings_are_read_and_normalised():
    s = Settings.from_env({
        "GRIDSVC_OGC_PRECONDITION": " Optional ", "GRIDSVC_BASEMAP": "XYZ",
        "GRIDSVC_BASEMAP_URL": "/tiles/{z}/{x}/{y}.png", "GRIDSVC_PROXY_HOPS": "2",
        "GRIDSVC_DATABASE_URL": "postgresql+psycopg://u@h/db", "GRIDSVC_LOOKUP_RATE_LIMIT": "off",
        "GRIDSVC_INDEX_CHECK_SECONDS": "0", "GRIDSVC_BATCH_LIMIT": "",  # empty: the default
    })
    assert (s.ogc_precondition, s.basemap, s.proxy_hops, s.batch_limit) == \
        ("optional", "xyz", 2, 10_000)
    assert Settings.from_env({"GRIDSVC_BASEMAP_URL": "https://t/{z}/{x}/{y}.png"}).basemap_url


def test_every_wrong_setting_is_named_at_once():
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"GRIDSVC_BASEMAP": "x", "GRIDSVC_MAX_UPLOAD_MB": "0"})
    assert "GRIDSVC_BASEMAP='x'" in str(err.value)
    assert "GRIDSVC_MAX_UPLOAD_MB='0'" in str(err.value)


@dataclasses.dataclass(frozen=True)
class _WithFlags(Settings):
    """Settings with a bool and a second enum, as a later setting will add them."""

    dry_run: bool = False
    mode: str = choice("a", ("a", "b"))


@pytest.mark.parametrize(("raw", "value"), [("1", True), ("yes", True), ("ON", True),
                                             ("true", True), ("0", False), ("off", False)])
def test_bool_settings(raw, value):
    assert _WithFlags.from_env({"GRIDSVC_DRY_RUN": raw}).dry_run is value


def test_a_wrong_bool_names_the_allowed_values():
    with pytest.raises(SettingsError, match=r"GRIDSVC_DRY_RUN='maybe' is not a valid bool: "
                                            r"one of 1, true, yes, on, 0, false, no, off"):
        _WithFlags.from_env({"GRIDSVC_DRY_RUN": "maybe", "GRIDSVC_MODE": "b"})


@pytest.mark.parametrize("command", [["lookup", "--lon", "120.9", "--lat", "32",
                                      "--coordsys", "wgs84"], ["init-db"], ["serve"]])
def test_a_command_with_a_wrong_setting_stops_before_it_starts(command, tmp_path):
    env = {**os.environ, "GRIDSVC_OGC_PRECONDITION": "optinal",
           "GRIDSVC_INSTANCE_DIR": str(tmp_path), "GRIDSVC_DATABASE_URL": ""}
    done = subprocess.run([sys.executable, "-m", "gridsvc", *command], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "GRIDSVC_OGC_PRECONDITION='optinal' is not one of: required, optional" in done.stderr
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.iterdir())  # nothing started: no database file made


def test_the_app_refuses_a_wrong_setting(monkeypatch):
    from gridsvc.web import create_app

    monkeypatch.setenv("GRIDSVC_OGC_PRECONDITION", "optinal")
    with pytest.raises(SettingsError, match="GRIDSVC_OGC_PRECONDITION"):
        create_app()


def test_default_levels():
    h = load_hierarchy("")
    assert [lv.key for lv in h.levels] == ["street", "community", "grid", "building",
                                           "household"]
    assert h.micro_grid.key == "building" and h.household.key == "household"
    assert h.resolve("4") == h.resolve("building") == h.resolve("楼栋党小组") == DEFAULT_LEVELS[3]
    assert h.resolve(4.0) == DEFAULT_LEVELS[3] and h.resolve("7") is None


def test_renamed_levels_inline_and_from_file(tmp_path):
    h = load_hierarchy(NANTONG)
    names = ["社区大党委", "党总支", "网格党支部", "党小组", "微网格"]
    assert [lv.name for lv in h.levels] == names
    assert h.resolve("党小组").level == 4 and h.micro_grid.level == 4
    path = tmp_path / "levels.json"
    path.write_text(NANTONG, encoding="utf-8")
    assert load_hierarchy(str(path)) == h


def test_four_level_hierarchy_without_households():
    h = load_hierarchy('[{"level": 5, "drop": true}]')
    assert h.depth == 4 and h.household is None and h.micro_grid.level == 4


@pytest.mark.parametrize("spec, words", [
    ('[{"level": 3, "geometry": "point"}]', "only the last level"),
    ('[{"level": 2, "key": "street"}]', "unique"),
    ('[{"level": 7, "name": "x"}]', "needs"),
    ("{not json", "neither"),
    ('[{"level": 2, "drop": true}]', "numbered"),
])
def test_bad_hierarchies_are_refused(spec, words):
    with pytest.raises(HierarchyError, match=words):
        load_hierarchy(spec)


@pytest.mark.storage
def test_renamed_levels_reach_the_api(settings):
    import dataclasses

    from api_support import G1, app_client, sample_records, sign_in

    from gridsvc.services.boundaries import import_records
    from gridsvc.services.context import Services

    renamed = dataclasses.replace(settings, levels=NANTONG)
    svc = Services.from_settings(renamed)
    assert import_records(svc, sample_records(), viewer=cli_principal()).stored
    svc.close()
    with app_client(renamed) as client:
        sign_in(client, renamed)
        levels = client.get("/api/v1/levels").get_json()
        assert [lv["name"] for lv in levels["levels"]][:2] == ["社区大党委", "党总支"]
        unit = client.get(f"/api/v1/units/{G1}").get_json()
        assert (unit["level_key"], unit["level_name"]) == ("grid", "网格党支部")
