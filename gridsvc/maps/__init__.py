"""Maps people look at: folium pages that work offline on a chosen base map.

- ``gridsvc.maps.assets``: ``localize(m)`` makes a map link the local copies of its scripts and
  stylesheets under ``/vendor/`` (raising ``MissingAssetError`` for a URL with none);
  ``save_offline(m, path)`` writes a static page with its assets copied beside it;
  ``install_assets(target_dir)`` installs them (``make install``).
- ``gridsvc.maps.basemap``: ``new_map(settings, location=(lat, lon), ...)`` builds a localized
  map on the configured base map; ``add_basemap(m, settings, can_shift=...)`` adds the tiles
  only; ``shift_geojson(data, coordsys)`` converts wgs84 GeoJSON for a gcj02 base map.

folium is imported only inside these modules; nothing is built at import time.
"""
