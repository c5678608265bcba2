"""Text encodings of Shapefile attributes (DBF) and checks for garbled text.

A DBF stores bytes; the encoding comes from, in this order: the ``.cpg`` file beside the
``.shp``; the ``--encoding`` option; else detection: UTF-8 if every text value and column name
is valid UTF-8, otherwise GB18030 (a superset of GBK and GB2312, what Chinese GIS software
writes without a ``.cpg``). The DBF's language-driver byte is ignored: Chinese files often carry
a wrong one. GBK and GB2312 are decoded as GB18030, which reads every valid GBK byte the same.

Text from any format is checked for signs of a wrong encoding: U+FFFD replacement characters,
or mojibake (Latin-1 letters where Chinese is expected, e.g. ``Ñô¹âÐ¡Çø`` for 阳光小区).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable
from pathlib import Path

import geopandas as gpd
import pandas as pd

from gridsvc.validation.report import Problem

UTF8 = "utf-8"
GB18030 = "gb18030"

# Latin-1 signs that do occur in Chinese text: middle dot in minority names, degree, times.
_LATIN1_OK = set("·°×÷±")
_SUSPECT = re.compile("[\x80-\xff\ufffd]")


def codec_name(label: str) -> str:
    """The Python codec for an encoding named by a user or a ``.cpg`` file.

    Accepts codec names (``utf-8``, ``GBK``), Windows code pages (``936``, ``CP936``,
    ``ANSI 936``) and ISO 8859 forms (``8859_1``, ``88591``). Raises ``ValueError`` if unknown.
    """
    text = label.strip().upper()
    text = re.sub(r"^ANSI\s*", "", text)
    iso = re.fullmatch(r"(?:ISO[-_ ]?)?8859[-_ ]?(\d+)", text)
    if iso:
        text = f"iso8859-{iso[1]}"
    elif text.isdigit():
        text = f"cp{text}"
    try:
        name = codecs.lookup(text).name
    except LookupError:
        raise ValueError(f"unknown encoding {label!r} (try utf-8 or gbk)") from None
    return GB18030 if name in ("gbk", "gb2312") else name


def cpg_text(shp: Path) -> str | None:
    """The contents of the ``.cpg`` beside a ``.shp`` (any case of the suffix), or None."""
    for suffix in (".cpg", ".CPG", ".Cpg"):
        cpg = shp.with_suffix(suffix)
        if cpg.is_file():
            return cpg.read_text(encoding="ascii", errors="replace").strip() or None
    return None


def valid(raw: bytes, codec: str) -> bool:
    try:
        raw.decode(codec)
    except UnicodeDecodeError:
        return False
    return True


def looks_utf8(raws: Iterable[bytes]) -> bool:
    """True when the bytes hold non-ASCII text and all of it is valid UTF-8: text written as
    UTF-8 (decoding it as GBK "succeeds" but gives nonsense like 闃冲厜)."""
    non_ascii = [raw for raw in raws if not raw.isascii()]
    return bool(non_ascii) and all(valid(raw, UTF8) for raw in non_ascii)


def looks_garbled(text: str) -> bool:
    """True for U+FFFD, C1 control characters, or two or more Latin-1 letters (mojibake)."""
    if not _SUSPECT.search(text):
        return False
    if "\ufffd" in text:
        return True
    latin = [ch for ch in text if 0x80 <= ord(ch) <= 0xFF and ch not in _LATIN1_OK]
    return any(ord(ch) < 0xA0 for ch in latin) or len(latin) >= 2


def decode_name(raw: bytes, codec: str) -> str | None:
    """A DBF column name, or None if not valid in ``codec``. A multi-byte character cut by
    the DBF's 10-byte limit (网格编码 in UTF-8 -> 网格编 plus one stray byte) is dropped."""
    try:
        return codecs.getincrementaldecoder(codec)().decode(raw, final=False)
    except UnicodeDecodeError:
        return None


def _text_columns(data: pd.DataFrame) -> list[str]:
    geometry = data.geometry.name if isinstance(data, gpd.GeoDataFrame) else None
    return [c for c in data.columns if c != geometry
            and (pd.api.types.is_string_dtype(data[c]) or data[c].dtype == object)]


def _more(rows: list[int]) -> str:
    return f" (and {len(rows) - 1} more rows)" if len(rows) > 1 else ""


def _hint(codec: str) -> str:
    if codec == UTF8:
        return "try --encoding gbk"
    return "try --encoding utf-8" if codec == GB18030 else "try --encoding gbk or utf-8"


def _choose(shp: Path, raws: list[bytes], names: list[bytes], explicit: str | None,
            explicit_label: str | None, label: str,
            problems: list[Problem]) -> tuple[str, str]:
    """The codec for one Shapefile and where it came from: .cpg, --encoding or detection."""
    def detected() -> str:
        names_ok = all(decode_name(n, UTF8) is not None for n in names)
        return UTF8 if names_ok and all(valid(r, UTF8) for r in raws) else GB18030

    cpg = cpg_text(shp)
    if cpg is None:
        if explicit:
            return explicit, f"--encoding {explicit_label}"
        return detected(), "detected"
    if explicit:
        problems.append(Problem("warning", "encoding-ignored",
                                f"Layer {label}: --encoding {explicit_label} ignored; the .cpg "
                                f"declares {cpg}.", layer=label))
    try:
        return codec_name(cpg), f"declared in the .cpg ({cpg})"
    except ValueError:
        problems.append(Problem("error", "bad-encoding",
                                f"Layer {label}: the .cpg names an unknown encoding {cpg!r}; "
                                "delete the .cpg and pass --encoding (gbk or utf-8).",
                                layer=label))
        return detected(), "detected"


def decode_shapefile(data: gpd.GeoDataFrame, shp: Path, label: str, explicit: str | None,
                     explicit_label: str | None, problems: list[Problem]) -> gpd.GeoDataFrame:
    """Decode a Shapefile read with ``encoding="latin1"`` (which hands back the DBF's bytes
    unchanged as Latin-1 text) in the file's real encoding. Values that do not decode become
    one problem per column naming the first row; they are kept with U+FFFD in place."""
    geometry = data.geometry.name
    names = {c: c.encode("latin1") for c in data.columns if c != geometry}
    values = {c: [v.encode("latin1") if isinstance(v, str) else None for v in data[c]]
              for c in _text_columns(data)}
    raws = [r for column in values.values() for r in column if r is not None]
    codec, source = _choose(shp, raws, list(names.values()), explicit, explicit_label, label,
                            problems)
    if source != "detected" and codec != UTF8 and looks_utf8(raws + list(names.values())):
        problems.append(Problem("error", "garbled-text",
                                f"Layer {label}: the text is UTF-8 but was read as {codec} "
                                f"({source}); import with --encoding utf-8.", layer=label))
    renames = {}
    for column, raw in names.items():
        name = decode_name(raw, codec)
        if name is None:
            problems.append(Problem("error", "bad-encoding",
                                    f"Layer {label}: column name {raw!r} is not valid {codec} "
                                    f"({source}); {_hint(codec)}.", layer=label))
            name = raw.decode(codec, errors="replace")
        renames[column] = name
    for column, raws_in_column in values.items():
        bad = [i for i, r in enumerate(raws_in_column) if r is not None and not valid(r, codec)]
        if bad:
            problems.append(Problem(
                "error", "bad-encoding",
                f"Layer {label} row {bad[0] + 1}, field {renames[column]}: the text is not valid "
                f"{codec} ({source}){_more(bad)}; {_hint(codec)}.",
                row=bad[0] + 1, layer=label, field=renames[column]))
        data[column] = pd.Series(
            [r.decode(codec, errors="replace") if r is not None else None
             for r in raws_in_column], index=data.index, dtype=object)
    return data.rename(columns=renames)


def check_garbled(data: pd.DataFrame, label: str, problems: list[Problem]) -> None:
    """One problem per text column whose values look like a wrong encoding (columns that
    failed to decode are reported already)."""
    reported = {p.field for p in problems if p.layer == label and p.rule == "bad-encoding"}
    hint = "for a Shapefile try --encoding gbk or --encoding utf-8, otherwise re-export as UTF-8"
    garbled_names = [str(c) for c in data.columns if looks_garbled(str(c))]
    if garbled_names:
        problems.append(Problem(
            "error", "garbled-text",
            f"Layer {label}: column names {', '.join(garbled_names)} look garbled (wrong "
            f"encoding); {hint}.", layer=label))
    for column in _text_columns(data):
        if column in reported:
            continue
        bad = [i for i, v in enumerate(data[column].tolist())
               if isinstance(v, str) and looks_garbled(v)]
        if bad:
            sample = data[column].iloc[bad[0]]
            problems.append(Problem(
                "error", "garbled-text",
                f"Layer {label} row {bad[0] + 1}, field {column}: the text {sample!r} looks "
                f"garbled (wrong encoding){_more(bad)}; {hint}.",
                row=bad[0] + 1, layer=label, field=column))
