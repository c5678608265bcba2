"""Settings come from GRIDSVC_* variables; level names are configuration, not code."""

import json

import pytest

from gridsvc.hierarchy import DEFAULT_LEVELS, HierarchyError, load_hierarchy
from gridsvc.settings import Settings

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
    assert import_records(svc, sample_records()).stored
    svc.close()
    with app_client(renamed) as client:
        sign_in(client, renamed)
        levels = client.get("/api/v1/levels").get_json()
        assert [lv["name"] for lv in levels["levels"]][:2] == ["社区大党委", "党总支"]
        unit = client.get(f"/api/v1/units/{G1}").get_json()
        assert (unit["level_key"], unit["level_name"]) == ("grid", "网格党支部")
