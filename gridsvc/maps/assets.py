"""Offline browser assets: every script and stylesheet of a folium map is served by gridsvc.

folium and its plugins link their JavaScript and CSS from public CDNs. On an intranet those
requests fail, so gridsvc installs the same files at set-up and rewrites the links:

- ``CDN_FILES`` maps each CDN URL a supported folium element references to a file under the
  assets folder. ``node_modules/...`` files come from the npm registry, pinned by the
  ``package.json`` and ``package-lock.json`` at the top of the checkout (the versions are the
  ones folium 0.20 links); ``derived/...`` files are made by ``install_assets`` from installed
  packages (folium's own heat-map script, the glyphicons part of Bootstrap 3, folium's
  icon-rotation classes).
- ``install_assets(target_dir)`` runs ``npm ci`` into the assets folder (``make install`` calls
  it through ``python -m gridsvc.maps.assets``); the folder is git-ignored.
- ``localize(m)`` makes a map link the local copies under ``/vendor/`` (served by
  ``gridsvc.web.vendor``). It checks the map's elements at once and every link again when the
  page is rendered, so an element added later is covered too; a link with no local copy raises
  ``MissingAssetError`` naming the URL, so a new plugin can never silently reach the internet.
- ``save_offline(m, path)`` writes a static HTML file that works from disk with no server and no
  network: the links are relative (``vendor/...``) and the referenced files, with the fonts and
  images their stylesheets use, are copied into a ``vendor/`` folder next to the file.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

import folium
from branca.element import CssLink, Element, Figure, JavascriptLink
from folium.elements import JSCSSMixin

from gridsvc.settings import Settings

CHECKOUT = Path(__file__).resolve().parents[2]
NPM_MANIFESTS = ("package.json", "package-lock.json")
SERVED_FOLDERS = ("node_modules", "derived")
DEFAULT_BASE_URL = "/vendor"

_NPM = "node_modules"
_JSDELIVR = "https://cdn.jsdelivr.net"
_CDNJS = "https://cdnjs.cloudflare.com/ajax/libs"
_FOLIUM_GH = f"{_JSDELIVR}/gh/python-visualization/folium"

CDN_FILES: dict[str, str] = {
    # folium.Map
    f"{_JSDELIVR}/npm/leaflet@1.9.3/dist/leaflet.js": f"{_NPM}/leaflet/dist/leaflet.js",
    f"{_JSDELIVR}/npm/leaflet@1.9.3/dist/leaflet.css": f"{_NPM}/leaflet/dist/leaflet.css",
    "https://code.jquery.com/jquery-3.7.1.min.js": f"{_NPM}/jquery/dist/jquery.min.js",
    f"{_CDNJS}/jquery/3.7.1/jquery.min.js": f"{_NPM}/jquery/dist/jquery.min.js",
    f"{_JSDELIVR}/npm/bootstrap@5.2.2/dist/js/bootstrap.bundle.min.js":
        f"{_NPM}/bootstrap/dist/js/bootstrap.bundle.min.js",
    f"{_JSDELIVR}/npm/bootstrap@5.2.2/dist/css/bootstrap.min.css":
        f"{_NPM}/bootstrap/dist/css/bootstrap.min.css",
    "https://netdna.bootstrapcdn.com/bootstrap/3.0.0/css/bootstrap-glyphicons.css":
        "derived/bootstrap3/bootstrap-glyphicons.css",
    f"{_JSDELIVR}/npm/@fortawesome/fontawesome-free@6.2.0/css/all.min.css":
        f"{_NPM}/@fortawesome/fontawesome-free/css/all.min.css",
    f"{_CDNJS}/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.js":
        f"{_NPM}/drmonty-leaflet-awesome-markers/js/leaflet.awesome-markers.js",
    f"{_CDNJS}/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.css":
        f"{_NPM}/drmonty-leaflet-awesome-markers/css/leaflet.awesome-markers.css",
    f"{_FOLIUM_GH}/folium/templates/leaflet.awesome.rotate.min.css":
        "derived/folium/leaflet.awesome.rotate.min.css",
    # branca colormaps (legends)
    f"{_CDNJS}/d3/3.5.5/d3.min.js": f"{_NPM}/d3/d3.min.js",
    # plugins.MarkerCluster
    f"{_CDNJS}/leaflet.markercluster/1.1.0/leaflet.markercluster.js":
        f"{_NPM}/leaflet.markercluster/dist/leaflet.markercluster.js",
    f"{_CDNJS}/leaflet.markercluster/1.1.0/MarkerCluster.css":
        f"{_NPM}/leaflet.markercluster/dist/MarkerCluster.css",
    f"{_CDNJS}/leaflet.markercluster/1.1.0/MarkerCluster.Default.css":
        f"{_NPM}/leaflet.markercluster/dist/MarkerCluster.Default.css",
    # plugins.HeatMap (the script ships inside the folium wheel)
    f"{_FOLIUM_GH}@main/folium/templates/leaflet_heat.min.js":
        "derived/folium/leaflet_heat.min.js",
    # plugins.Draw
    f"{_CDNJS}/leaflet.draw/1.0.2/leaflet.draw.js": f"{_NPM}/leaflet-draw/dist/leaflet.draw.js",
    f"{_CDNJS}/leaflet.draw/1.0.2/leaflet.draw.css": f"{_NPM}/leaflet-draw/dist/leaflet.draw.css",
    # plugins.Search
    f"{_JSDELIVR}/npm/leaflet-search@2.9.7/dist/leaflet-search.min.js":
        f"{_NPM}/leaflet-search/dist/leaflet-search.min.js",
    f"{_JSDELIVR}/npm/leaflet-search@2.9.7/dist/leaflet-search.min.css":
        f"{_NPM}/leaflet-search/dist/leaflet-search.min.css",
    # plugins.Fullscreen (the npm package has no minified copy)
    f"{_JSDELIVR}/npm/leaflet.fullscreen@3.0.0/Control.FullScreen.min.js":
        f"{_NPM}/leaflet.fullscreen/Control.FullScreen.js",
    f"{_JSDELIVR}/npm/leaflet.fullscreen@3.0.0/Control.FullScreen.css":
        f"{_NPM}/leaflet.fullscreen/Control.FullScreen.css",
    # plugins.MiniMap
    f"{_CDNJS}/leaflet-minimap/3.6.1/Control.MiniMap.js":
        f"{_NPM}/leaflet-minimap/dist/Control.MiniMap.min.js",
    f"{_CDNJS}/leaflet-minimap/3.6.1/Control.MiniMap.css":
        f"{_NPM}/leaflet-minimap/dist/Control.MiniMap.min.css",
    # plugins.LocateControl
    f"{_CDNJS}/leaflet-locatecontrol/0.66.2/L.Control.Locate.min.js":
        f"{_NPM}/leaflet.locatecontrol/dist/L.Control.Locate.min.js",
    f"{_CDNJS}/leaflet-locatecontrol/0.66.2/L.Control.Locate.min.css":
        f"{_NPM}/leaflet.locatecontrol/dist/L.Control.Locate.min.css",
    # plugins.FeatureGroupSubGroup
    "https://unpkg.com/leaflet.featuregroup.subgroup@1.0.2/dist/leaflet.featuregroup.subgroup.js":
        f"{_NPM}/leaflet.featuregroup.subgroup/dist/leaflet.featuregroup.subgroup.js",
    # plugins.Realtime (GeoJSON layers fetched from the API)
    f"{_CDNJS}/leaflet-realtime/2.2.0/leaflet-realtime.js":
        f"{_NPM}/leaflet-realtime/dist/leaflet-realtime.js",
}

_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+?)['"]?\s*\)""")
_GLYPHICONS_START = '@font-face {\n  font-family: "Glyphicons Halflings";'
_GLYPHICONS_END = "\n* {"


class MissingAssetError(LookupError):
    """A map links a URL that has no local copy (add it to CDN_FILES and package.json)."""


def assets_dir(settings: Settings | None = None) -> Path:
    """The folder with ``node_modules/`` and ``derived/``: the setting, else <checkout>/vendor."""
    if settings is not None and settings.assets_dir:
        return Path(settings.assets_dir)
    return CHECKOUT / "vendor"


def local_path(url: str) -> str:
    """The file under the assets folder that stands for ``url``; raises for an unknown URL."""
    try:
        return CDN_FILES[url]
    except KeyError:
        raise MissingAssetError(
            f"no local copy of {url}: add the package to package.json and the URL to "
            "gridsvc.maps.assets.CDN_FILES, so the page does not reach the internet"
        ) from None


def local_url(url: str, base_url: str = DEFAULT_BASE_URL) -> str:
    """``url`` rewritten to its local copy under ``base_url``; local URLs are kept as they are."""
    if not re.match(r"^(https?:)?//", url):
        return url
    return f"{base_url.rstrip('/')}/{local_path(url)}"


class _LocalHeader(Element):
    """A figure header that rewrites its script and stylesheet links when rendered."""

    def __init__(self, header: Element, base_url: str) -> None:
        super().__init__()
        self._name = header._name
        self._parent = header._parent
        self._children = header._children
        self.base_url = base_url

    def render(self, **kwargs) -> str:
        for child in self._children.values():
            if isinstance(child, JavascriptLink | CssLink):
                child.url = local_url(child.url, self.base_url)
        return super().render(**kwargs)


def _walk(element: Element) -> Iterator[Element]:
    yield element
    for child in element._children.values():
        yield from _walk(child)


def linked_urls(m: Element) -> list[str]:
    """The CDN URLs the plugins of ``m``'s tree declare (before rendering)."""
    urls = []
    for element in _walk(m):
        if isinstance(element, JSCSSMixin):
            urls += [url for _, url in [*element.default_js, *element.default_css]]
    return urls


def figure_of(m: folium.Map) -> Figure:
    """The page a map renders into (folium types ``get_root()`` as a plain ``Element``)."""
    root = m.get_root()
    assert isinstance(root, Figure)
    return root


def localize(m: folium.Map, base_url: str = DEFAULT_BASE_URL) -> folium.Map:
    """Make ``m`` link local copies under ``base_url`` instead of CDNs; returns ``m``.

    Raises ``MissingAssetError`` now for an element already on the map, and at rendering for one
    added later.
    """
    for url in linked_urls(m):
        local_url(url, base_url)
    figure = m.get_root()
    if not isinstance(figure, Figure):
        raise TypeError("localize needs a map inside a folium/branca Figure")
    if isinstance(figure.header, _LocalHeader):
        figure.header.base_url = base_url
    else:
        figure.header = _LocalHeader(figure.header, base_url)
    return m


def _referenced_files(css_file: Path) -> Iterator[Path]:
    """Files a stylesheet loads by relative ``url(...)`` (fonts, images)."""
    for ref in _CSS_URL.findall(css_file.read_text(encoding="utf-8", errors="replace")):
        if re.match(r"^([a-z]+:|/|#)", ref):
            continue
        target = (css_file.parent / ref.split("?")[0].split("#")[0]).resolve()
        if target.is_file():
            yield target


def _files_with_dependencies(source: Path, rel_paths: Iterable[str]) -> set[Path]:
    wanted = {(source / rel).resolve() for rel in rel_paths}
    for path in list(wanted):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run `make install`")
        if path.suffix == ".css":
            wanted.update(_referenced_files(path))
    return wanted


def save_offline(m: folium.Map, path: Path, source: Path | None = None) -> Path:
    """Write ``m`` to ``path`` as a self-contained static page: assets go to ``vendor/`` beside it.

    The page then opens from disk (file://) or any static web server, with no network.
    """
    source = (source or assets_dir()).resolve()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    localize(m, "vendor")
    figure = figure_of(m)
    html = figure.render()
    used = [link.url.removeprefix("vendor/") for link in figure.header._children.values()
            if isinstance(link, JavascriptLink | CssLink)]
    for file in _files_with_dependencies(source, used):
        copy = path.parent / "vendor" / file.relative_to(source)
        if not copy.exists() or copy.stat().st_size != file.stat().st_size:
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, copy)
    path.write_text(html, encoding="utf-8")
    return path


def glyphicons_css(bootstrap3_css: str) -> str:
    """The glyphicon font and classes of Bootstrap 3's stylesheet, fonts linked from npm's copy."""
    start = bootstrap3_css.index(_GLYPHICONS_START)
    end = bootstrap3_css.index(_GLYPHICONS_END, start)
    part = bootstrap3_css[start:end]
    return part.replace("../fonts/", f"../../{_NPM}/bootstrap3/dist/fonts/") + "\n"


def rotate_css() -> str:
    """The ``fa-rotate-N`` classes folium's ``Icon(angle=N)`` uses, N = 0..359 degrees."""
    return "".join(
        f".fa-rotate-{n}{{-ms-transform:rotate({n}deg);-webkit-transform:rotate({n}deg);"
        f"transform:rotate({n}deg);}}\n" for n in range(360)
    )


def _write_derived(target: Path) -> None:
    derived = target / "derived"
    (derived / "folium").mkdir(parents=True, exist_ok=True)
    (derived / "bootstrap3").mkdir(parents=True, exist_ok=True)
    folium_templates = Path(folium.__file__).parent / "templates"
    shutil.copyfile(folium_templates / "leaflet_heat.min.js",
                    derived / "folium" / "leaflet_heat.min.js")
    (derived / "folium" / "leaflet.awesome.rotate.min.css").write_text(rotate_css())
    bootstrap3 = (target / _NPM / "bootstrap3" / "dist" / "css" / "bootstrap.css").read_text()
    (derived / "bootstrap3" / "bootstrap-glyphicons.css").write_text(glyphicons_css(bootstrap3))


def missing_files(target: Path | None = None) -> list[str]:
    """The files of ``CDN_FILES`` not present under ``target`` (empty when all are installed)."""
    target = target or assets_dir()
    return sorted({rel for rel in CDN_FILES.values() if not (target / rel).is_file()})


def install_assets(target_dir: Path | None = None) -> Path:
    """Install the pinned npm packages and the derived files into ``target_dir``; check them."""
    target = Path(target_dir or assets_dir()).resolve()
    target.mkdir(parents=True, exist_ok=True)
    for name in NPM_MANIFESTS:
        if (CHECKOUT / name).resolve() != (target / name):
            shutil.copyfile(CHECKOUT / name, target / name)
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: install Debian's nodejs/npm (make install does)")
    subprocess.run([npm, "ci", "--prefix", str(target), "--ignore-scripts", "--no-audit",
                    "--no-fund", "--loglevel=error"], check=True)
    _write_derived(target)
    missing = missing_files(target)
    if missing:
        raise RuntimeError(f"assets missing after install in {target}: {', '.join(missing)}")
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gridsvc.maps.assets",
                                     description="Install the browser assets the maps use.")
    parser.add_argument("target", nargs="?", type=Path, default=None,
                        help="assets folder (default: GRIDSVC_ASSETS_DIR or <checkout>/vendor)")
    args = parser.parse_args(argv)
    target = install_assets(args.target or assets_dir(Settings.from_env()))
    print(f"browser assets installed in {target}")


if __name__ == "__main__":
    main()
