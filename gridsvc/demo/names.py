"""Word lists and helpers for the demo city's place names, people and phone numbers.

All names are made up from common words; any likeness to a real place or person is chance.
Every helper draws from the NumPy ``Generator`` it is given, so a seed fixes every name.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

COUNTY_CODE = "320602"  # the county-level division the demo city's codes start with
DISTRICT = "崇川区"  # its name, the district part of every address

SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶顾毛郝邵钱严戴"
)
GIVEN_CHARS = list(
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国红玉梅文辉林斌波宇浩凯鹏飞欣怡佳雪"
    "琳晨晓峰海亮志新春燕萍荣德振宏婷慧丹俊立成永金云健瑞琴颖龙东晶莉博彬鑫楠蕾洁"
)

STREET_WORDS = [
    "和平", "新华", "人民", "向阳", "东风", "红旗", "解放", "建设", "城东", "城西", "城南",
    "城北", "文峰", "虹桥", "学田", "钟秀", "观音山", "狼山", "新城", "永兴", "长桥", "秦灶",
    "陈桥", "幸福", "唐闸", "天生港", "任港", "新开", "中兴", "江海", "濠西", "濠东", "北郊",
    "南郊", "五一", "友谊", "光明", "大生", "八一", "团结", "星湖", "滨江", "平潮", "刘桥",
    "兴东", "竹行", "小海", "石港", "马塘", "川姜",
]

PLACE_WORDS = [
    "幸福", "阳光", "和谐", "春晖", "青年", "友谊", "光明", "朝阳", "东方", "紫荆", "桃园",
    "梅林", "竹林", "松柏", "枫叶", "银杏", "丁香", "玉兰", "海棠", "牡丹", "芙蓉", "荷花",
    "百合", "翠竹", "碧波", "清风", "明月", "星光", "彩虹", "晨曦", "华联", "新华", "锦绣",
    "紫薇", "金色", "翡翠", "丽景", "御景", "春江", "江南", "绿洲", "水岸", "盛世", "凤凰",
    "书香", "蓝湾", "金桥", "香榭", "怡景", "悦来", "龙湖", "华府", "瑞祥", "康乐", "福寿",
    "安居", "乐居", "宜家", "天成", "恒兴", "永安", "长乐", "万福", "金鼎", "银河", "天河",
    "濠景", "文苑", "学府", "园林", "秀水", "青山", "白云", "望江", "观澜", "听涛", "半岛",
    "聚福", "瑞丰", "嘉和", "中天", "新天地", "世纪", "东湖", "西湖", "南湖", "北湖", "钟楼",
    "鼓楼", "城隍", "通达", "崇文", "尚德", "明德", "育才", "启秀", "兴隆", "丰乐", "永和",
    "太平", "长青", "常春", "四季", "百花", "桂花", "梧桐", "杨柳", "樱花", "石榴", "葡萄",
    "橄榄", "珍珠", "琥珀", "钻石", "水晶", "玫瑰", "郁金香", "香樟", "红枫", "雅居", "怡和",
]

COMPOUND_KINDS = ["小区", "花园", "家园", "新村", "苑", "公寓", "花苑", "嘉园", "名邸", "雅苑"]

ROAD_WORDS = [
    "人民", "幸福", "和平", "建设", "解放", "青年", "中山", "长江", "黄河", "工农", "崇川",
    "濠河", "文峰", "钟秀", "虹桥", "城山", "桃园", "跃龙", "园林", "世纪", "通江", "通富",
    "北京", "上海", "南京", "苏州", "扬州", "延安", "井冈山", "韬奋", "任港", "学田", "友谊",
    "光明", "胜利", "复兴", "振兴", "团结", "民主", "自由", "东风", "朝阳", "曙光", "星光",
    "红星", "永和", "永兴", "长兴", "新桥", "太平", "八一", "五一", "南通", "启秀", "观音山",
    "狼山", "星湖", "江海", "海港", "港闸", "秦灶", "陈桥", "唐闸", "通京", "通沪", "洪江",
    "桃坞", "西寺", "模范", "环西", "环城", "青山", "紫琅", "钟楼", "静海",
    "崇文", "工人", "公园", "体育", "文化", "科技", "创新", "高新", "开发", "金融", "商贸",
    "银河", "天安", "兴富", "华新", "虹桥", "盘香", "易家桥", "北濠", "南濠", "东濠", "西濠",
]

_PHASES = ["", "二期", "三期", "四期", "五期", "六期", "七期", "八期", "九期", "十期"]
COMPOUND_TEMPLATES = ["{}" + phase for phase in _PHASES]
PHONE_PREFIXES = ["13", "15", "18"]


def unique_names(
    rng: np.random.Generator, words: Sequence[str], templates: Sequence[str], n: int
) -> list[str]:
    """``n`` distinct names in random order, filling each template with every word in turn.

    The second template is touched only when the first has used every word, so variants
    ("幸福东社区", "阳光小区二期") appear only when plain names run out.
    Past what the words and templates give (the province scale), each template comes again
    with a number after the word ("幸福2路"), so names stay distinct; the smaller scales never
    get there and keep their names.
    """
    distinct = list(dict.fromkeys(words))
    capacity = len(distinct) * len(templates)
    if n > capacity and distinct:
        rounds = -(-n // capacity)
        templates = [t.replace("{}", "{}" + (str(k + 1) if k else ""), 1)
                     for k in range(rounds) for t in templates]
        capacity = len(distinct) * len(templates)
    if n > capacity:
        raise ValueError(f"only {capacity} distinct names from {templates}, {n} asked for")
    names: list[str] = []
    for template in templates:
        if len(names) >= n:
            break
        order = rng.permutation(len(distinct))
        names.extend(template.format(distinct[i]) for i in order[: n - len(names)])
    return [names[i] for i in rng.permutation(n)]


def person_names(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` made-up Chinese names: a surname and a one- or two-character given name."""
    surnames = rng.integers(len(SURNAMES), size=n).tolist()
    first = rng.integers(len(GIVEN_CHARS), size=n).tolist()
    second = rng.integers(len(GIVEN_CHARS), size=n).tolist()
    two_chars = (rng.random(n) < 0.6).tolist()
    return [
        SURNAMES[s] + GIVEN_CHARS[a] + (GIVEN_CHARS[b] if two else "")
        for s, a, b, two in zip(surnames, first, second, two_chars, strict=True)
    ]


def phone_numbers(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` made-up 11-digit mobile numbers starting 13, 15 or 18."""
    prefixes = rng.integers(len(PHONE_PREFIXES), size=n).tolist()
    rest = rng.integers(0, 10**9, size=n).tolist()
    return [f"{PHONE_PREFIXES[p]}{r:09d}" for p, r in zip(prefixes, rest, strict=True)]
