/* gridsvc map layers: GeoJSON layers inlined in the page or fetched from
 * /api/v1/layers/{level}?bbox=&zoom= as the view moves; a name search; a registry that tests
 * and the benchmark read (window.gridsvcMaps.layers[name].count, .drawn).
 * Every value from the data goes through esc() before it joins HTML (tooltips, popups, icons)
 * or is set as textContent. The page's CSP allows no inline handler anyway.
 * Nothing touches Leaflet until a function is called, so the file may load before leaflet.js. */
(function () {
  "use strict";
  var layers = {};

  function esc(value) {
    return String(value).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }

  function colour(scale, value) {
    if (value === null || value === undefined || !scale) { return scale ? scale.nodata : "#999"; }
    var index = scale.index, colours = scale.colors, last = index.length - 1;
    if (value <= index[0]) { return rgb(colours[0]); }
    if (value >= index[last]) { return rgb(colours[last]); }
    for (var i = 1; i <= last; i++) {
      if (value <= index[i]) {
        var t = (value - index[i - 1]) / (index[i] - index[i - 1]);
        return rgb(colours[i - 1].map(function (c, k) { return c + t * (colours[i][k] - c); }));
      }
    }
    return rgb(colours[last]);
  }

  function rgb(c) {
    return "rgb(" + Math.round(c[0] * 255) + "," + Math.round(c[1] * 255) + "," +
      Math.round(c[2] * 255) + ")";
  }

  function table(props, fields) {
    var rows = fields.map(function (f) {
      var v = props[f[0]];
      return "<tr><th>" + esc(f[1]) + "</th><td>" + (v === null || v === undefined ? "-" : esc(v)) +
        "</td></tr>";
    });
    return "<table class='gridsvc-popup'>" + rows.join("") + "</table>";
  }

  function style(cfg) {
    return function (feature) {
      var p = feature.properties || {};
      switch (cfg.kind) {
        case "outline":
          return {color: cfg.color || "#333", weight: cfg.weight || 2, fill: false};
        case "highlight":
          return {color: cfg.color || "#d7191c", weight: 3, dashArray: "6 4", fillColor: cfg.color ||
            "#d7191c", fillOpacity: 0.25};
        case "problems":
          var c = (cfg.rules || {})[p.rule] || "#d7191c";
          return {color: c, weight: 3, fillColor: c, fillOpacity: 0.45};
        default:  // choropleth
          return {color: "#555", weight: cfg.weight || 1, fillColor: colour(cfg.scale, p[cfg.value]),
            fillOpacity: 0.65};
      }
    };
  }

  function point(cfg) {
    return function (feature, latlng) {
      var p = feature.properties || {};
      var radius = cfg.kind === "counts" ? 4 + 2 * Math.sqrt(p.members || 0) : 5;
      var c = cfg.kind === "problems" ? ((cfg.rules || {})[p.rule] || "#d7191c") : cfg.color || "#c51b8a";
      return L.circleMarker(latlng, {radius: radius, color: c, weight: 1, fillColor: c,
        fillOpacity: 0.7});
    };
  }

  function geojsonLayer(cfg, data) {
    return L.geoJSON(data, {
      style: style(cfg),
      pointToLayer: point(cfg),
      onEachFeature: function (feature, layer) {
        var p = feature.properties || {};
        if (cfg.tooltip) { layer.bindTooltip(esc(p[cfg.tooltip[0]]) + (cfg.tooltip[1] ? " " +
          esc(p[cfg.tooltip[1]] || "") : ""), {sticky: true}); }
        if (cfg.fields) { layer.bindPopup(table(p, cfg.fields)); }
      }
    });
  }

  function pointsOf(data) {
    return (data.features || []).filter(function (f) {
      return f.geometry && f.geometry.type === "Point";
    });
  }

  function clusterLayer(data) {
    var group = L.markerClusterGroup({
      iconCreateFunction: function (cluster) {
        var n = cluster.getAllChildMarkers().reduce(function (s, m) {
          return s + (m.options.members || 0);
        }, 0);
        var size = n < 100 ? "small" : n < 1000 ? "medium" : "large";
        return L.divIcon({html: "<div><span>" + esc(n) + "</span></div>",
          className: "marker-cluster marker-cluster-" + size, iconSize: L.point(40, 40)});
      }
    });
    pointsOf(data).forEach(function (f) {
      var c = f.geometry.coordinates, p = f.properties;
      var m = L.marker([c[1], c[0]], {members: p.members});
      m.bindTooltip(p.label ? esc(p.label) : esc(p.name) + ": " + esc(p.members));
      group.addLayer(m);
    });
    return group;
  }

  function heatLayer(data) {
    var pts = pointsOf(data).map(function (f) {
      var c = f.geometry.coordinates;
      return [c[1], c[0], f.properties.members || 1];
    });
    var max = pts.reduce(function (m, p) { return Math.max(m, p[2]); }, 1);
    return L.heatLayer(pts, {radius: 20, blur: 15, max: max});
  }

  function draw(state, data) {
    var cfg = state.cfg;
    state.group.clearLayers();
    var layer = cfg.kind === "cluster" ? clusterLayer(data) :
      cfg.kind === "heat" ? heatLayer(data) : geojsonLayer(cfg, data);
    state.group.addLayer(layer);
    state.count = (data.features || []).length;
    state.matched = data.numberMatched === undefined ? state.count : data.numberMatched;
    state.truncated = !!data.truncated;
    state.drawn = true;
    state.features = data.features || [];
    hint(state);
  }

  function hint(state) {
    if (!state.hintEl) { return; }
    var cfg = state.cfg, z = state.map.getZoom(), text = "";
    if (state.map.hasLayer(state.group)) {
      if (cfg.minZoom && z < cfg.minZoom) {
        text = cfg.title + ": zoom in to " + cfg.minZoom + " to see them";
      } else if (state.truncated) {
        text = cfg.title + ": " + state.count + " of " + state.matched + " shown; zoom in";
      }
    }
    state.hintEl.textContent = text;
    state.hintEl.style.display = text ? "block" : "none";
  }

  function query(state) {
    var cfg = state.cfg, map = state.map, b = map.getBounds().pad(0.2);
    var clamp = function (v, lo, hi) { return Math.min(hi, Math.max(lo, v)); };
    var params = {
      bbox: [clamp(b.getWest(), -180, 180), clamp(b.getSouth(), -90, 90),
        clamp(b.getEast(), -180, 180), clamp(b.getNorth(), -90, 90)].map(function (v) {
        return v.toFixed(6);
      }).join(","),
      zoom: map.getZoom()
    };
    Object.keys(cfg.params || {}).forEach(function (k) { params[k] = cfg.params[k]; });
    return cfg.url + "?" + Object.keys(params).map(function (k) {
      return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]);
    }).join("&");
  }

  function refresh(state) {
    var cfg = state.cfg, map = state.map;
    if (!map.hasLayer(state.group)) { hint(state); return; }
    if (cfg.minZoom && map.getZoom() < cfg.minZoom) {
      if (state.controller) { state.controller.abort(); state.controller = null; }
      draw(state, {type: "FeatureCollection", features: []});
      return;
    }
    if (state.controller) { state.controller.abort(); }
    var controller = new AbortController();
    state.controller = controller;
    state.loading = true;
    state.requests += 1;
    fetch(query(state), {signal: controller.signal, headers: {Accept: "application/geo+json"}})
      .then(function (r) {
        if (!r.ok) { throw new Error(cfg.url + " answered " + r.status); }
        return r.json();
      })
      .then(function (data) {
        if (state.controller !== controller) { return; }
        state.controller = null;
        state.loading = false;
        draw(state, data);
      })
      .catch(function (err) {
        if (err.name === "AbortError") { return; }
        state.loading = false;
        state.error = String(err);
        console.warn("gridsvc: " + err);
      });
  }

  function hintBox(map) {
    if (!map._gridsvcHints) {
      var box = L.control({position: "bottomleft"});
      box.onAdd = function () {
        var div = L.DomUtil.create("div", "gridsvc-hints");
        div.style.cssText = "background:rgba(255,255,255,.85);padding:2px 6px;font:12px sans-serif";
        return div;
      };
      box.addTo(map);
      map._gridsvcHints = box.getContainer();
    }
    var el = L.DomUtil.create("div", "", map._gridsvcHints);
    el.style.display = "none";
    return el;
  }

  /* Fill the feature group `group` from cfg.data (inline) or cfg.url (fetched per view). */
  function attach(map, group, cfg) {
    var state = {cfg: cfg, map: map, group: group, count: 0, matched: 0, truncated: false,
      drawn: false, loading: false, requests: 0, features: []};
    layers[cfg.title] = state;
    if (cfg.data) {
      draw(state, cfg.data);
      return state;
    }
    state.hintEl = hintBox(map);
    var timer = null;
    var later = function () {
      clearTimeout(timer);
      timer = setTimeout(function () { refresh(state); }, 100);
    };
    map.on("moveend", later);
    map.on("overlayadd overlayremove", function (e) {
      if (e.layer === group) { later(); }
    });
    map.whenReady(later);  // debounced: the page's fitBounds moveend joins this first fetch
    return state;
  }

  /* A small search control: names in the loaded layers, then the units API when given. */
  function search(map, cfg) {
    var control = L.control({position: "topleft"});
    control.onAdd = function () {
      var div = L.DomUtil.create("div", "gridsvc-search leaflet-bar");
      div.style.cssText = "background:#fff;padding:4px;font:13px sans-serif";
      div.innerHTML = "<input type='search' placeholder='" + esc(cfg.placeholder || "search") +
        "' style='width:14em'><div class='gridsvc-search-results'></div>";
      L.DomEvent.disableClickPropagation(div);
      L.DomEvent.disableScrollPropagation(div);
      var input = div.querySelector("input"), results = div.lastChild;
      var show = function (features) {
        results.innerHTML = "";
        features.slice(0, 10).forEach(function (f) {
          var a = L.DomUtil.create("a", "", results);
          a.href = "#";
          a.style.display = "block";
          a.textContent = f.properties.name + " " + f.properties.code;
          L.DomEvent.on(a, "click", function (e) {
            L.DomEvent.preventDefault(e);
            var bounds = L.geoJSON(f).getBounds();
            map.fitBounds(bounds, {maxZoom: 18});
            L.popup().setLatLng(bounds.getCenter()).setContent(esc(f.properties.name) + " " +
              esc(f.properties.code)).openOn(map);
          });
        });
        if (!features.length) { results.textContent = "no match"; }
      };
      L.DomEvent.on(input, "change", function () {
        var text = input.value.trim();
        if (!text) { results.innerHTML = ""; return; }
        var found = [];
        Object.keys(layers).forEach(function (k) {
          layers[k].features.forEach(function (f) {
            var p = f.properties || {};
            if (f.geometry && p.name && (p.name.indexOf(text) >= 0 || String(p.code) === text) &&
                !found.some(function (g) { return g.properties.code === p.code; })) {
              found.push(f);
            }
          });
        });
        if (found.length || !cfg.url) { show(found); return; }
        fetch(cfg.url + "?f=geojson&limit=10&q=" + encodeURIComponent(text))
          .then(function (r) { return r.json(); })
          .then(function (data) { show((data.features || []).filter(function (f) {
            return f.geometry; })); });
      });
      return div;
    };
    control.addTo(map);
    return control;
  }

  window.gridsvcMaps = {
    attach: attach,
    search: search,
    layers: layers,
    idle: function () {
      return Object.keys(layers).every(function (k) {
        var s = layers[k];
        return !s.loading && (s.drawn || !s.map.hasLayer(s.group));
      });
    }
  };
})();
