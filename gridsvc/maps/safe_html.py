"""How text and scripts go into a map page safely.

Stored text (unit names, leaders, addresses, member names, problem messages, file names)
reaches a folium page only through ``script_json`` (inside a <script>) or ``html_text`` (in
HTML). Both also make it inert for Jinja: branca parses the output of every element's macro
*again* as a Jinja template, so a name holding ``{{ ... }}`` would otherwise run on the server.
Code goes in as ``InlineScript``, ready HTML as ``RawHtml`` (neither is parsed as a template).

Every map page uses ``PAGE_TEMPLATE`` (set by ``basemap.new_map``): its title is escaped and its
inline scripts carry the nonce the page is rendered with (``render_page(figure, nonce)``),
the response's Content-Security-Policy nonce. The one script folium writes into every map's header
(``L_NO_TOUCH``/``L_DISABLE_3D``, constant) carries none and is allowed by its hash
(``constant_script_hashes``).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from functools import cache
from typing import Any

from branca.element import Element, Figure
from folium.template import Template

_JINJA_OPEN = re.compile(r"\{(?=[{%#])")  # the start of {{ ... }}, {% ... %} or {# ... #}
_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                   "\u2029": "\\u2029"}
_SCRIPT_UNSAFE = re.compile("[<>&\u2028\u2029]")


def script_json(data: Any) -> str:
    """JSON of a value (``bytes``: JSON text as it is) safe inside a <script> and inert for
    Jinja.

    ``<``, ``>`` and ``&`` (so no ``</script>`` or ``<!--``), U+2028/U+2029 and a ``{`` that
    would open a Jinja tag become ``\\uXXXX`` escapes. In JSON text they can only stand inside
    strings, where the escape means the same character.
    """
    text = data.decode() if isinstance(data, bytes) else json.dumps(data, ensure_ascii=False)
    text = _SCRIPT_UNSAFE.sub(lambda m: _SCRIPT_ESCAPES[m[0]], text)
    return _JINJA_OPEN.sub(r"\\u007b", text)


def html_text(value: Any) -> str:
    """Text (or a quoted attribute value) safe in HTML and inert for Jinja."""
    return html.escape(str(value), quote=True).replace("{", "&#123;")


def script_tag(nonce: str | None) -> str:
    """An opening <script> tag carrying ``nonce`` when there is one."""
    return f'<script nonce="{html_text(nonce)}">' if nonce else "<script>"


class InlineScript(Element):
    """A <script> holding ``code`` as it is, with the nonce the page is rendered with."""

    def __init__(self, code: str) -> None:
        super().__init__()
        self._name = "InlineScript"
        self.code = code

    def render(self, **kwargs: Any) -> str:
        return f"{script_tag(getattr(self.get_root(), 'nonce', None))}{self.code}</script>"


class RawHtml(Element):
    """HTML made safe already (e.g. by a Jinja template with autoescape), added as it is."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self._name = "RawHtml"
        self.markup = markup

    def render(self, **kwargs: Any) -> str:
        return self.markup


# branca's Figure template, with the title escaped and the nonce on the map's script.
PAGE_TEMPLATE = Template(
    "<!DOCTYPE html>\n<html>\n<head>\n"
    "{% if this.title %}<title>{{ this.title|e }}</title>{% endif %}"
    "    {{ this.header.render(**kwargs) }}\n</head>\n<body>\n"
    "    {{ this.html.render(**kwargs) }}\n</body>\n"
    "{% if this.nonce %}<script nonce=\"{{ this.nonce|e }}\">{% else %}<script>{% endif %}\n"
    "    {{ this.script.render(**kwargs) }}\n</script>\n</html>\n")


def render_page(figure: Figure, nonce: str | None = None) -> str:
    """The page's HTML, its inline scripts carrying ``nonce`` (the response's CSP nonce).

    The nonce is an attribute of the figure, not a render argument: several folium elements
    take no keyword arguments in ``render``."""
    figure.nonce = nonce  # type: ignore[attr-defined]  # read by the templates of this module
    try:
        return figure.render()
    finally:
        figure.nonce = None  # type: ignore[attr-defined]  # (see above)


@cache
def constant_script_hashes() -> tuple[str, ...]:
    """CSP sources (``'sha256-...'``) of the constant inline scripts folium writes into every
    map page's header, which carry no nonce."""
    import folium

    page = folium.Map(tiles=None).get_root().render()
    return tuple(
        "'sha256-" + base64.b64encode(hashlib.sha256(code.encode()).digest()).decode() + "'"
        for code in re.findall(r"<script>(.*?)</script>", page, flags=re.S)
        if "L_NO_TOUCH" in code)
