/* The planner's boundary editor (gridsvc /maps/editor).
 *
 * Pick a unit, edit its polygon with Leaflet.draw (or draw a new one), "Check" asks
 * POST /api/v1/units/<code>/geometry/check for the failing rules and the members who would
 * move, "Save" sends PUT /api/v1/units/<code>/geometry with If-Match (the unit's ETag).
 * Coordinates are wgs84 GeoJSON throughout. The planner's token (sent as
 * "Authorization: Bearer") stays in sessionStorage, for this tab only; without one, a browser
 * signed in at /session sends its cookie, and every write the page's CSRF token (the
 * <meta name="csrf-token"> the server put in the page) as X-CSRF-Token. Stored text (names,
 * leaders, problem messages) enters the page only as text: el() sets textContent, and
 * tooltips get DOM nodes, never HTML strings.
 *
 * GridEditor.start({map, drawn, unit}) wires the page and returns the editor, also exposed
 * as window.gridsvcEditor: layer() is the polygon being edited, check()/save()/load(code)
 * return promises (used by the browser test and handy from the console).
 */
(function () {
  "use strict";

  const TOKEN_KEY = "gridsvc.token";
  const STYLE = {
    unit: {color: "#d9480f", weight: 3, fillOpacity: 0.15},
    sibling: {color: "#1c7ed6", weight: 2, fillOpacity: 0.05},
    parent: {color: "#495057", weight: 2, dashArray: "6 4", fill: false},
    child: {color: "#868e96", weight: 1, dashArray: "2 3", fill: false},
    error: {color: "#e03131", weight: 2, fillColor: "#e03131", fillOpacity: 0.5},
    warning: {color: "#f08c00", weight: 2, dashArray: "4 4", fillOpacity: 0.05},
  };

  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function fmtArea(m2) {
    return m2 >= 10000 ? (m2 / 10000).toFixed(2) + " ha" : m2.toFixed(1) + " m²";
  }

  function Editor(map, drawn, initialCode) {
    this.map = map;
    this.drawn = drawn;
    this.unit = null; // properties of the loaded unit
    this.etag = null;
    this.names = {}; // code -> name of the units on the map
    this.context = L.featureGroup().addTo(map); // parent, siblings, children
    this.problems = L.featureGroup().addTo(map);
    this.lastCheck = null;
    this.wanted = null; // a unit that could not be loaded yet (no token): loaded on entry
    this.wire();
    if (initialCode) this.load(initialCode);
  }

  Editor.prototype.token = function () {
    return $("ed-token").value.trim();
  };

  Editor.prototype.api = async function (method, url, options) {
    const opts = options || {};
    const headers = Object.assign({Accept: "application/json"}, opts.headers || {});
    const token = this.token();
    if (token) {
      headers.Authorization = "Bearer " + token;
    } else if (method !== "GET" && method !== "HEAD") {
      const csrf = document.querySelector('meta[name="csrf-token"]');
      if (csrf) headers["X-CSRF-Token"] = csrf.content;
    }
    let body = opts.body;
    if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.json);
    }
    const resp = await fetch(url, {method: method, headers: headers, body: body});
    const text = await resp.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (err) {
      data = {detail: text};
    }
    return {status: resp.status, etag: resp.headers.get("ETag"), data: data};
  };

  Editor.prototype.status = function (text, kind) {
    const box = $("ed-status");
    box.textContent = text;
    box.className = "ed-status " + (kind || "");
  };

  Editor.prototype.wire = function () {
    const self = this;
    $("ed-token").value = sessionStorage.getItem(TOKEN_KEY) || "";
    $("ed-token").addEventListener("input", function () {
      sessionStorage.setItem(TOKEN_KEY, self.token());
    });
    $("ed-token").addEventListener("change", function () {
      if (self.wanted && !self.unit) self.load(self.wanted);
    });
    $("ed-search-form").addEventListener("submit", function (e) {
      e.preventDefault();
      self.search($("ed-search").value.trim());
    });
    $("ed-check").addEventListener("click", function () {
      self.check();
    });
    $("ed-save").addEventListener("click", function () {
      self.save();
    });
    $("ed-reset").addEventListener("click", function () {
      if (self.unit) self.load(self.unit.code);
    });
    $("ed-upload-check").addEventListener("click", function () {
      self.upload(true);
    });
    $("ed-upload-apply").addEventListener("click", function () {
      self.upload(false);
    });
    $("ed-file").addEventListener("change", function () {
      $("ed-upload-apply").disabled = true;
    });
    this.map.on(L.Draw.Event.CREATED, function (e) {
      // a newly drawn polygon replaces the unit's geometry
      self.drawn.eachLayer(function (layer) {
        if (layer !== e.layer) self.drawn.removeLayer(layer);
      });
      if (e.layer.setStyle) e.layer.setStyle(STYLE.unit);
      self.changed();
    });
    this.map.on("draw:edited draw:editvertex draw:editmove", function () {
      self.changed();
    });
  };

  Editor.prototype.changed = function () {
    this.lastCheck = null;
    this.problems.clearLayers();
    $("ed-save").disabled = !this.unit;
    this.status("Changed, not checked yet.", "");
  };

  Editor.prototype.search = async function (q) {
    const list = $("ed-results");
    list.replaceChildren();
    if (!q) return;
    const url = "/api/v1/units?limit=20&q=" + encodeURIComponent(q);
    const resp = await this.api("GET", url);
    if (resp.status !== 200) {
      list.append(el("li", resp.data.detail || "search failed", "ed-error"));
      return;
    }
    if (!resp.data.items.length) list.append(el("li", "No unit matches " + q + "."));
    for (const item of resp.data.items) {
      const button = el("button", item.name + " · " + item.code + " · " + item.level_name);
      button.type = "button";
      button.dataset.code = item.code;
      button.addEventListener("click", () => this.load(item.code));
      const li = el("li");
      li.append(button);
      list.append(li);
    }
  };

  Editor.prototype.geojsonLayers = function (data, style, label) {
    return L.geoJSON(data, {
      style: function (feature) {
        return typeof style === "function" ? style(feature) : style;
      },
      pointToLayer: function (feature, latlng) {
        const own = typeof style === "function" ? style(feature) : style;
        return L.circleMarker(latlng, Object.assign({radius: 5}, own));
      },
      onEachFeature: function (feature, layer) {
        const p = feature.properties || {};
        // a DOM node, never a string: Leaflet puts a string into the page as HTML
        if (label) layer.bindTooltip(el("span", label(p)));
      },
    });
  };

  Editor.prototype.load = async function (code) {
    this.status("Loading " + code + "…", "");
    const resp = await this.api("GET", "/api/v1/units/" + encodeURIComponent(code) + "?f=geojson");
    if (resp.status !== 200) {
      this.wanted = code;
      if (resp.status === 401 || resp.status === 403) {
        this.showProblem(resp);
      } else {
        this.status((resp.data && resp.data.detail) || "cannot load " + code, "error");
      }
      return;
    }
    this.wanted = null;
    const feature = resp.data;
    this.unit = feature.properties;
    this.etag = resp.etag;
    this.names = {};
    this.names[code] = this.unit.name;
    this.drawn.clearLayers();
    this.context.clearLayers();
    this.problems.clearLayers();
    this.lastCheck = null;
    this.showUnit();
    this.editable(feature.geometry);
    await this.loadContext();
    const bounds = this.context.getBounds();
    if (this.drawn.getLayers().length) bounds.extend(this.drawn.getBounds());
    if (bounds.isValid()) {
      const panel = $("ed-panel").offsetWidth + 30; // keep the shapes clear of the panel
      this.map.fitBounds(bounds, {paddingTopLeft: [20, 20], paddingBottomRight: [panel, 20]});
    }
    $("ed-save").disabled = false;
    $("ed-check").disabled = false;
    $("ed-reset").disabled = false;
    $("ed-result").replaceChildren();
    const url = new URL(window.location.href);
    url.searchParams.set("unit", code);
    window.history.replaceState(null, "", url);
    this.status("Loaded " + this.unit.name + " (version " + this.unit.version + ").", "ok");
  };

  Editor.prototype.editable = function (geometry) {
    // A one-part MultiPolygon is edited as a Polygon: Leaflet.draw edits rings best that way.
    let geom = geometry;
    if (geom && geom.type === "MultiPolygon" && geom.coordinates.length === 1) {
      geom = {type: "Polygon", coordinates: geom.coordinates[0]};
    }
    if (!geom) return;
    const layers = this.geojsonLayers(geom, STYLE.unit);
    layers.eachLayer((layer) => this.drawn.addLayer(layer));
  };

  Editor.prototype.loadContext = async function () {
    const unit = this.unit;
    const label = (p) => p.name + " · " + p.code;
    const requests = [this.api("GET", "/api/v1/units/" + encodeURIComponent(unit.code) +
                               "/children?f=geojson")];
    if (unit.parent_code) {
      const parent = encodeURIComponent(unit.parent_code);
      requests.push(this.api("GET", "/api/v1/units/" + parent + "/children?f=geojson"));
      requests.push(this.api("GET", "/api/v1/units/" + parent + "?f=geojson"));
    }
    const [children, siblings, parent] = await Promise.all(requests);
    if (children && children.status === 200) {
      this.context.addLayer(this.geojsonLayers(children.data, STYLE.child, label));
    }
    if (siblings && siblings.status === 200) {
      const others = siblings.data.features.filter((f) => f.id !== unit.code);
      for (const f of others) this.names[f.id] = f.properties.name;
      $("ed-siblings").textContent = others.length + " sibling(s) shown in blue";
      this.context.addLayer(this.geojsonLayers(
        {type: "FeatureCollection", features: others}, STYLE.sibling, label));
    }
    if (parent && parent.status === 200) {
      this.names[parent.data.id] = parent.data.properties.name;
      this.context.addLayer(this.geojsonLayers(parent.data, STYLE.parent, label));
    }
  };

  Editor.prototype.showUnit = function () {
    const u = this.unit;
    $("ed-unit").replaceChildren(
      el("strong", u.name), el("span", " " + u.code + " · " + u.level_name),
      el("div", "version " + u.version + (u.leader ? " · " + u.leader : ""), "ed-muted"));
  };

  Editor.prototype.geometry = function () {
    const layers = this.drawn.getLayers();
    if (!layers.length) return null;
    return layers[0].toGeoJSON().geometry;
  };

  /** The polygon being edited (a Leaflet layer): setLatLngs() on it, then check(). */
  Editor.prototype.layer = function () {
    return this.drawn.getLayers()[0] || null;
  };

  Editor.prototype.unitUrl = function (suffix) {
    return "/api/v1/units/" + encodeURIComponent(this.unit.code) + suffix;
  };

  Editor.prototype.check = async function () {
    if (!this.unit) return null;
    this.status("Checking…", "");
    const resp = await this.api("POST", this.unitUrl("/geometry/check"), {json: this.geometry()});
    if (resp.status !== 200) {
      this.showProblem(resp);
      return resp;
    }
    const data = resp.data;
    this.lastCheck = data;
    this.problems.clearLayers();
    const severity = (f) => (f.properties.severity === "error" ? STYLE.error : STYLE.warning);
    this.problems.addLayer(this.geojsonLayers(data.problem_features, severity,
                                              (p) => p.message));
    this.showReport(data.report, data.moves, "would move");
    if (data.version !== this.unit.version) {
      this.status("Someone saved this unit since you loaded it (now version " + data.version +
                  "); saving will be refused. Reload to see their change.", "error");
    } else if (data.ok) {
      this.status("Check passed" + (data.report.warnings ? " with warnings" : "") +
                  ". " + data.moves.length + " would move. Save to apply.", "ok");
    } else {
      this.status("Check failed: " + data.report.errors + " error(s). Nothing is saved.",
                  "error");
    }
    return resp;
  };

  Editor.prototype.save = async function () {
    if (!this.unit) return null;
    this.status("Saving…", "");
    const resp = await this.api("PUT", this.unitUrl("/geometry"), {
      json: this.geometry(),
      headers: {"If-Match": this.etag || ""},
    });
    if (resp.status === 200) {
      const data = resp.data;
      this.unit = data.unit;
      this.etag = resp.etag;
      this.drawn.clearLayers();
      this.problems.clearLayers();
      this.editable(data.unit.geometry);
      this.showUnit();
      this.showReport(data.report, data.moves, "moved");
      this.status("Saved: version " + data.version + ", " + data.moves.length + " moved.", "ok");
    } else if (resp.status === 412) {
      this.showConflict(resp.data);
    } else {
      this.showProblem(resp);
    }
    return resp;
  };

  Editor.prototype.showConflict = function (problem) {
    this.status("Not saved: " + problem.detail, "error");
    const box = $("ed-result");
    const button = el("button", "Reload the unit (your edit is discarded)");
    button.type = "button";
    button.id = "ed-reload";
    button.addEventListener("click", () => this.load(this.unit.code));
    box.replaceChildren(el("p", "Another planner saved this unit after you loaded it."), button);
  };

  Editor.prototype.showProblem = function (resp) {
    const p = resp.data || {};
    let hint = "";
    if (resp.status === 401) hint = " Enter a planner token above.";
    if (resp.status === 403) hint = " This token may not edit this unit: use a planner token " +
      "whose subtree holds it.";
    this.status("Error " + resp.status + ": " + (p.detail || p.title || "") + hint, "error");
    if (p.report) this.showReport(p.report, [], "would move");
  };

  Editor.prototype.describe = function (problem) {
    let text = problem.message;
    if (problem.other_code && this.names[problem.other_code]) {
      text += " [" + this.names[problem.other_code] + "]";
    }
    return text;
  };

  Editor.prototype.showReport = function (report, moves, verb) {
    const box = $("ed-result");
    box.replaceChildren();
    const problems = el("ul", null, "ed-problems");
    for (const p of report.problems) {
      const li = el("li", null, "ed-" + p.severity);
      li.dataset.rule = p.rule;
      li.append(el("b", p.severity + " · " + p.rule), el("span", " " + this.describe(p)));
      if (p.area_m2 !== undefined) li.append(el("span", " (" + fmtArea(p.area_m2) + ")"));
      problems.append(li);
    }
    if (!report.problems.length) problems.append(el("li", "No problems.", "ed-ok"));
    box.append(el("h3", "Checks"), problems);
    box.append(el("h3", moves.length + " " + verb));
    if (!moves.length) return;
    const table = el("table", null, "ed-moves");
    const head = el("tr");
    for (const h of ["who", "id", "from", "to"]) head.append(el("th", h));
    table.append(head);
    for (const m of moves) {
      const row = el("tr");
      row.dataset.subject = m.subject;
      const to = (m.to[m.to.length - 1] || "none") + (m.fallback ? " (nearest, to confirm)" : "");
      row.append(el("td", (m.subject === "household" ? "户 " : "") + m.label), el("td", m.id),
                 el("td", m.from[m.from.length - 1] || "none"), el("td", to));
      table.append(row);
    }
    box.append(table);
  };

  Editor.prototype.upload = async function (dryRun) {
    const file = $("ed-file").files[0];
    if (!file) {
      this.status("Choose a boundary file first.", "error");
      return null;
    }
    const form = new FormData();
    form.append("file", file);
    if (dryRun) form.append("dry_run", "1");
    this.status(dryRun ? "Checking the file…" : "Importing the file…", "");
    const resp = await this.api("POST", "/api/v1/boundaries/import", {body: form});
    if (resp.status === 200 || resp.status === 201) {
      const d = resp.data;
      this.showReport(d.report, d.moves, dryRun ? "would move" : "moved");
      $("ed-upload-apply").disabled = !dryRun;
      this.status((dryRun ? "File check passed: would create " : "Imported: created ") +
                  d.created + ", update " + d.updated + ", leave " + d.unchanged +
                  " unchanged." + (dryRun ? " Import to apply." : ""), "ok");
      if (!dryRun && this.unit) {
        this.status("Imported. Reload the unit to edit its imported boundary.", "ok");
      }
    } else {
      $("ed-upload-apply").disabled = true;
      this.showProblem(resp);
    }
    return resp;
  };

  window.GridEditor = {
    start: function (options) {
      const editor = new Editor(options.map, options.drawn, options.unit);
      window.gridsvcEditor = editor;
      return editor;
    },
  };
})();
