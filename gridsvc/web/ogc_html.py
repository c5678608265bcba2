"""The HTML views of the OGC API - Features resources (``f=html`` or a browser's Accept):
plain server-rendered pages with the resource's links, a table of its content and the same
data as JSON one link away. No script, no external asset."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

STYLE = (
    "body{font-family:sans-serif;margin:1.5em;max-width:70em}"
    "table{border-collapse:collapse;margin:.5em 0}"
    "td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}nav a{margin-right:1em}"
)


def _text(value: Any) -> str:
    return "" if value is None else escape(str(value))


def _a(href: str, text: Any) -> str:
    return f"<a href='{escape(href, quote=True)}'>{_text(text)}</a>"


def page(title: str, body: str, links: Iterable[Mapping[str, Any]] = ()) -> str:
    """A whole page: title, navigation from the resource's links, then ``body``."""
    nav = " ".join(_a(link["href"], link.get("title") or link["rel"]) for link in links)
    return (
        "<!doctype html><html lang='zh'><head><meta charset='utf-8'>"
        f"<title>{_text(title)} · gridsvc OGC API</title><style>{STYLE}</style></head><body>"
        f"<nav>{nav}</nav><h1>{_text(title)}</h1>{body}</body></html>"
    )


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table whose cells are HTML already (escape text with ``cell``)."""
    head = "".join(f"<th>{_text(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def cell(value: Any) -> str:
    return _text(value)


def link_cell(href: str, text: Any) -> str:
    return _a(href, text)


def paragraph(text: str) -> str:
    return f"<p>{_text(text)}</p>"


def link_list(links: Iterable[Mapping[str, Any]]) -> str:
    items = "".join(f"<li>{_a(link['href'], link.get('title') or link['rel'])} "
                    f"<small>({_text(link['rel'])}, {_text(link.get('type'))})</small></li>"
                    for link in links)
    return f"<ul>{items}</ul>"


def properties_table(props: Mapping[str, Any]) -> str:
    return table(["property", "value"], ([cell(k), cell(v)] for k, v in props.items()))
