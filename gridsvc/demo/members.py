"""A made-up roster of in-service Party members for the demo city, deterministic from a seed.

About three members per building (Poisson; some buildings get none, so coverage maps have
micro-grids with no member), with the mess a real roster has: home addresses mostly in the
standard form with 单元 and 室, some with province/city/district prefixes, Chinese numerals or
号楼 instead of 栋; some members give a phone location in gcj02 instead of an address; a few
give only their compound (they end needs-confirmation). Names and phones are invented.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from gridsvc.demo.city import DemoCity
from gridsvc.demo.names import person_names, phone_numbers
from gridsvc.spatial.coordsys import from_wgs84

WORK_UNITS = ["市财政局", "市税务局", "市供电公司", "市第一人民医院", "崇川区教育局",
              "市自来水公司", "市公安局", "市交通运输局", "市人民检察院", "南通大学"]
SKILLS = ["政策宣传", "矛盾调解", "帮扶助困", "法律援助", "医疗健康", "文体活动", "助老助残",
          "环境整治"]
COLUMNS = ["姓名", "手机", "所在党组织", "工作单位", "居住地址", "经度", "纬度", "坐标系", "特长",
           "服务意向", "角色"]
CN_DIGITS = "零一二三四五六七八九"


def _chinese(number: str) -> str:
    return "".join(CN_DIGITS[int(d)] for d in number) if number.isdigit() else number


def demo_roster(city: DemoCity, seed: int = 1, per_building: float = 3.0) -> list[dict[str, str]]:
    """Roster rows (Chinese headers, as staff would upload them) for the city's buildings."""
    rng = np.random.default_rng(seed + 1009)
    counts = rng.poisson(per_building, size=len(city.gazetteer))
    total = int(counts.sum())
    names = person_names(rng, total)
    phones = list(dict.fromkeys(phone_numbers(rng, total * 2)))[:total]
    draws = rng.random((total, 4))
    units = rng.integers(1, 4, size=total)
    floors = rng.integers(1, 19, size=total)
    rooms = rng.integers(1, 5, size=total)
    work = rng.integers(len(WORK_UNITS), size=total)
    skills = rng.integers(len(SKILLS), size=(total, 2))
    rows: list[dict[str, str]] = []
    n = 0
    for entry, count in zip(city.gazetteer, counts.tolist(), strict=True):
        for k in range(count):
            form, prefix, via_point, role = draws[n]
            number = entry.building.removesuffix("栋")
            building = entry.building
            if form < 0.1:
                building = _chinese(number) + "栋"
            elif form < 0.2:
                building = number + "号楼"
            address = f"{entry.road}{entry.door_number}{entry.compound}{building}"
            address += f"{units[n]}单元{floors[n]}{rooms[n]:02d}室"
            if prefix < 0.2:
                address = f"江苏省南通市{entry.district}" + address
            row = {c: "" for c in COLUMNS}
            row |= {
                "姓名": names[n], "手机": phones[n], "工作单位": WORK_UNITS[work[n]],
                "所在党组织": WORK_UNITS[work[n]] + "机关党支部",
                "特长": "、".join(dict.fromkeys(SKILLS[s] for s in skills[n])),
                "服务意向": "周末志愿服务" if role < 0.5 else "",
                "角色": "楼栋长" if k == 0 and role < 0.3 else ("党员先锋" if role > 0.8 else ""),
            }
            if via_point < 0.1:  # a phone location (WeChat gives gcj02)
                lon, lat = from_wgs84(entry.lon, entry.lat, "gcj02")
                row |= {"经度": f"{lon:.7f}", "纬度": f"{lat:.7f}", "坐标系": "gcj02"}
            elif via_point > 0.98:  # only the compound: staff must confirm the building
                row["居住地址"] = f"{entry.road}{entry.door_number}{entry.compound}"
            else:
                row["居住地址"] = address
            rows.append(row)
            n += 1
    return rows


def write_roster(rows: list[dict[str, str]], path: Path) -> Path:
    """The rows as a UTF-8 CSV with a BOM (what Excel writes)."""
    with Path(path).open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)
