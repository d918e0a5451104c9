// nntrain view: draws the page from the JSON in <script id="nntrain-data"> with Plotly.
// Every string from a run folder is written with textContent, or escaped (esc) where Plotly
// reads its text as HTML-like markup (trace names, hover text, titles, tick labels).
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("nntrain-data").textContent);
  const COLOURS = DATA.colours;  // loss.png's and the pictures' (plots.COLOURS)
  const CONFIG = {displaylogo: false, responsive: true};
  const state = {smoothing: 0, seeds: false, extra: false, logx: {}, logy: {}, frame: 0,
                 x: "epoch"};

  // -- helpers ------------------------------------------------------------------------------
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function esc(text) {  // Plotly renders <br>, <b>, <a ...> in its texts and fills %{...} in
    // hover templates: show them as text
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;").replace(/%/g, "&#37;");
  }
  function finite(v) { return typeof v === "number" && isFinite(v); }
  function fmt(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(+v.toPrecision(6));
    return String(v);
  }
  function colour(i) { return COLOURS[i % COLOURS.length]; }
  function short(text, limit = 36) {  // a legend entry; hover shows the whole name
    text = String(text);
    return text.length > limit ? text.slice(0, limit - 1) + "\u2026" : text;
  }
  function section(title) {
    const box = el("section");
    box.appendChild(el("h2", {}, title));
    document.body.appendChild(box);
    return box;
  }

  // Sections below the first screen are drawn when they are scrolled near (parallel
  // coordinates alone take a second in a browser without a GPU); drawAll draws them all.
  const pending = [];
  function lazily(box, draw) {
    let done = false;
    const run = () => { if (!done) { done = true; draw(); } };
    pending.push(run);
    if (!("IntersectionObserver" in window)) { run(); return run; }
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) { observer.disconnect(); run(); }
    }, {rootMargin: "200px"});
    observer.observe(box);
    return run;
  }
  function drawAll() { pending.forEach((run) => run()); }

  // -- smoothing and the mean over seeds (pure functions, tested from Python) ---------------
  // TensorBoard's exponential moving average with bias correction; a gap of g epochs between
  // drawn points (a thinned curve) counts as g steps, so thinning changes the curve little.
  // Non-finite values are kept as they are and do not enter the average.
  function smooth(epochs, values, weight) {
    if (!(weight > 0)) return values.slice();
    const out = [];
    let last = 0, debias = 0, previous = null;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (!finite(v)) { out.push(v); continue; }
      const gap = previous === null ? 1 : Math.max(epochs[i] - previous, 1);
      const w = Math.pow(weight, gap);
      last = last * w + (1 - w) * v;
      debias = debias * w + (1 - w);
      out.push(last / debias);
      previous = epochs[i];
    }
    return out;
  }
  // A run's value at epoch e: linear between its drawn points, null outside them or where it
  // is not finite (a diverged seed leaves the band from its first non-finite point).
  function valueAt(epochs, values, e, from) {
    let i = from;
    while (i < epochs.length && epochs[i] < e) i++;
    if (i >= epochs.length) return [null, i];
    if (epochs[i] === e) return [finite(values[i]) ? values[i] : null, i];
    if (i === 0) return [null, i];
    const a = values[i - 1], b = values[i];
    if (!finite(a) || !finite(b)) return [null, i];
    const t = (e - epochs[i - 1]) / (epochs[i] - epochs[i - 1]);
    return [a + t * (b - a), i];
  }
  // Mean and population std over the series present at each epoch, and their count.
  function aggregate(series) {
    const all = new Set();
    for (const s of series) for (const e of s.epochs) all.add(e);
    const epochs = Array.from(all).sort((a, b) => a - b);
    const mean = [], std = [], count = [], cursor = series.map(() => 0);
    for (const e of epochs) {
      const present = [];
      series.forEach((s, k) => {
        const [v, i] = valueAt(s.epochs, s.values, e, cursor[k]);
        cursor[k] = i;
        if (v !== null) present.push(v);
      });
      count.push(present.length);
      if (!present.length) { mean.push(null); std.push(null); continue; }
      const m = present.reduce((a, b) => a + b, 0) / present.length;
      mean.push(m);
      std.push(Math.sqrt(present.reduce((a, b) => a + (b - m) * (b - m), 0) / present.length));
    }
    return {epochs, mean, std, count};
  }
  function lastFinite(epochs, values) {  // [epoch, value] before the first non-finite value
    const start = values.findIndex(finite);  // after the blank cells a curve may start with
    if (start < 0) return null;
    for (let i = start + 1; i < values.length; i++) {
      if (!finite(values[i])) return [epochs[i - 1], values[i - 1]];
    }
    return null;
  }
  // A boundary frame: base64 bytes, row by row; 255 is a point where the output is not
  // finite (a diverged network), any other byte b is the value b / scale.
  function decodeFrame(text, width, scale) {
    const bytes = atob(text), rows = [];
    for (let i = 0; i < bytes.length; i += width) {
      const row = new Array(width);
      for (let j = 0; j < width; j++) {
        const b = bytes.charCodeAt(i + j);
        row[j] = b === 255 ? null : b / scale;
      }
      rows.push(row);
    }
    return rows;
  }

  // -- header ----------------------------------------------------------------------------
  function header() {
    document.body.appendChild(el("h1", {}, "nntrain view: " + DATA.title));
    const runs = DATA.runs.length, tests = (DATA.ranges || []).length;
    const parts = [];
    if (runs || !tests) {
      parts.push(`${runs} run${runs === 1 ? "" : "s"}, ${DATA.variants.length} variant` +
                 `${DATA.variants.length === 1 ? "" : "s"}`);
    }
    if (tests) parts.push(`${tests} learning-rate range test${tests === 1 ? "" : "s"}`);
    const meta = el("p", {class: "meta"}, `${parts.join("; ")}; written ${DATA.created}`);
    document.body.appendChild(meta);
    const s = DATA.state;
    if (DATA.live || s.pending || s.running) {
      const parts = [];
      if (s.running) parts.push(`${s.running} running`);
      if (s.pending) parts.push(`${s.pending} still to run`);
      const text = parts.join(", ") + (DATA.live ? "; this page reloads itself while runs go on"
                                                 : "");
      document.body.appendChild(el("p", {class: "live", id: "live"}, text));
    }
  }

  // -- the runs table ------------------------------------------------------------------------
  function table() {
    if (!DATA.runs.length) return;
    const box = section("Runs");
    const cols = DATA.table.columns, rows = DATA.table.rows.slice();
    const tbl = el("table", {class: "runs", id: "runs-table"});
    const head = el("tr");
    const body = el("tbody");
    let sortedBy = null, up = true;
    cols.forEach((c) => {
      const text = typeof rows.find((r) => r[c] !== null && r[c] !== undefined)?.[c] !== "number";
      const th = el("th", {class: text ? "text" : "", title: "sort by " + c}, c);
      th.addEventListener("click", () => {
        up = sortedBy === c ? !up : true;
        sortedBy = c;
        rows.sort((a, b) => compare(a[c], b[c]) * (up ? 1 : -1));
        head.querySelectorAll("th").forEach((h) => h.classList.remove("sorted-up", "sorted-down"));
        th.classList.add(up ? "sorted-up" : "sorted-down");
        fill();
      });
      head.appendChild(th);
    });
    function compare(a, b) {
      const blank = (v) => v === null || v === undefined || v === "";
      if (blank(a) || blank(b)) return blank(a) - blank(b);
      if (typeof a === "number" && typeof b === "number") return a - b;
      return String(a).localeCompare(String(b), undefined, {numeric: true});
    }
    function fill() {
      body.replaceChildren();
      for (const r of rows) {
        const tr = el("tr", {class: DATA_BAD.has(r.status) ? "bad" : ""});
        for (const c of cols) {
          const v = r[c];
          const td = el("td", {class: typeof v === "number" ? "" : "text"}, fmt(v));
          if (typeof v === "number" && !Number.isInteger(v)) td.title = String(v);
          if (c === "status") {
            td.className = "text status-" + String(v);
            if (DATA_BAD.has(v)) td.textContent = "\u26a0 " + v;
          }
          tr.appendChild(td);
        }
        body.appendChild(tr);
      }
    }
    const thead = el("thead");
    thead.appendChild(head);
    tbl.append(thead, body);
    fill();
    box.appendChild(tbl);
  }
  const DATA_BAD = new Set(["diverged", "failed", "interrupted", "incomplete", "running"]);

  // -- curves ------------------------------------------------------------------------------
  const charts = [];
  function curvesSection() {
    if (!DATA.curves.length) return;
    const box = section("Curves");
    const controls = el("div", {class: "controls"});
    const slider = el("input", {type: "range", min: "0", max: "0.99", step: "0.01", value: "0",
                                id: "smoothing"});
    const shown = el("span", {id: "smoothing-value"}, "0 (off)");
    slider.addEventListener("input", () => {
      state.smoothing = +slider.value;
      shown.textContent = state.smoothing ? String(state.smoothing) : "0 (off)";
      drawCurves();
    });
    const smoothLabel = el("label", {}, "smoothing (EMA weight) ");
    smoothLabel.append(slider, " ", shown);
    controls.appendChild(smoothLabel);
    if (DATA.variants.some((v) => v.runs.length > 1)) {
      controls.appendChild(checkbox("seeds", "show seeds one by one (else mean \u00b1 std)",
        (on) => { state.seeds = on; drawCurves(); }));
    }
    if (DATA.runs.some((r) => r.curves.evaluations)) {
      const select = el("select", {id: "x-axis"});
      for (const x of ["epoch", "evaluations"]) select.appendChild(el("option", {value: x}, x));
      select.addEventListener("change", () => { state.x = select.value; drawCurves(); });
      const label = el("label", {}, "x axis ");
      label.appendChild(select);
      controls.appendChild(label);
    }
    if (DATA.extra.length) {
      controls.appendChild(checkbox("extra", "show " + DATA.extra.join(" and "),
        (on) => { state.extra = on; layoutCurves(); drawCurves(); }));
    }
    box.appendChild(controls);
    const grid = el("div", {class: "charts", id: "charts"});
    box.appendChild(grid);
    for (const column of [...DATA.curves, ...DATA.extra]) {
      const chartBox = el("div", {class: "chart-box", "data-column": column});
      const axes = el("div", {class: "axes"});
      state.logy[column] = spansDecades(column);  // as compare's loss.png: log when it helps
      axes.append(checkbox("logx-" + column, "log x", (on) => logAxis(column, "x", on)),
                  checkbox("logy-" + column, "log y", (on) => logAxis(column, "y", on),
                           state.logy[column]));
      const div = el("div", {class: "chart", id: "chart-" + column});
      chartBox.append(axes, div);
      grid.appendChild(chartBox);
      charts.push({column, box: chartBox, div, extra: DATA.extra.includes(column)});
    }
    layoutCurves();
    drawCurves();
  }
  function checkbox(id, text, onChange, checked = false) {
    const label = el("label", {});
    const input = el("input", {type: "checkbox", id: id});
    input.checked = checked;
    input.addEventListener("change", () => onChange(input.checked));
    label.append(input, " " + text + " ");
    return label;
  }
  // A column whose positive values span more than a factor 100 (a diverged run's 1e300
  // beside 0.01) starts on a log axis, so one run does not flatten the others.
  function spansDecades(column) {
    let low = Infinity, high = 0;
    for (const run of DATA.runs) {
      for (const v of run.curves[column] || []) {
        if (finite(v) && v > 0) { low = Math.min(low, v); high = Math.max(high, v); }
      }
    }
    return high > 0 && high / low > 100;
  }
  function layoutCurves() {
    for (const chart of charts) chart.box.style.display = chart.extra && !state.extra ? "none" : "";
  }
  function logAxis(column, axis, on) {
    (axis === "x" ? state.logx : state.logy)[column] = on;
    const chart = charts.find((c) => c.column === column);
    Plotly.relayout(chart.div, {[axis + "axis.type"]: on ? "log" : "linear"});
  }
  function runTraces(column) {
    const traces = [];
    const variantColour = Object.fromEntries(DATA.variants.map((v) => [v.label, v.colour]));
    DATA.runs.forEach((run) => {
      const raw = run.curves[column], epochs = run.epochs;
      if (!raw) return;
      const values = smooth(epochs, raw, state.smoothing);
      const x = xValues(run);
      // its variant's colour, as in loss.png (a variant's seeds share it)
      const name = esc(run.name), c = variantColour[run.variant];
      if (state.smoothing > 0) {
        traces.push({x: x, y: raw, mode: "lines", line: {color: c, width: 1},
                     opacity: 0.25, legendgroup: name, showlegend: false, hoverinfo: "skip",
                     name: name});
      }
      traces.push({x: x, y: values, mode: "lines", line: {color: c, width: 1.6},
                   name: esc(short(run.name)), legendgroup: name,
                   hovertemplate: `${name}<br>${state.x} %{x}<br>${esc(column)} %{y:.6g}<extra></extra>`});
      const stop = lastFinite(x, values);
      if (stop) traces.push(divergedMarker(stop, c, name, `${name} diverged after ${state.x} ${stop[0]}`));
    });
    return traces;
  }
  function divergedMarker(point, c, group, text) {
    return {x: [point[0]], y: [point[1]], mode: "markers", legendgroup: group, showlegend: false,
            marker: {symbol: "x", size: 11, color: c, line: {width: 2, color: c}},
            hovertemplate: text + "<extra></extra>", name: "diverged"};
  }
  function variantTraces(column) {
    const traces = [];
    DATA.variants.forEach((variant) => {
      const runs = variant.runs.map((n) => DATA.runs.find((r) => r.name === n))
        .filter((r) => r.curves[column]);
      if (!runs.length) return;
      const name = esc(variant.label), c = variant.colour;  // its colour in loss.png
      const smoothed = runs.map((r) => ({epochs: xValues(r),
        values: smooth(r.epochs, r.curves[column], state.smoothing)}));
      const agg = aggregate(smoothed);
      const upper = agg.mean.map((m, k) => m === null ? null : m + agg.std[k]);
      const lower = agg.mean.map((m, k) => m === null ? null : m - agg.std[k]);
      traces.push({x: agg.epochs, y: upper, mode: "lines", line: {width: 0, color: c},
                   legendgroup: name, showlegend: false, hoverinfo: "skip", name: name});
      traces.push({x: agg.epochs, y: lower, mode: "lines", line: {width: 0, color: c},
                   fill: "tonexty", fillcolor: rgba(c, 0.2), legendgroup: name, showlegend: false,
                   hoverinfo: "skip", name: name});
      if (state.smoothing > 0) {
        const raw = aggregate(runs.map((r) => ({epochs: xValues(r), values: r.curves[column]})));
        traces.push({x: raw.epochs, y: raw.mean, mode: "lines", opacity: 0.25,
                     line: {color: c, width: 1}, legendgroup: name, showlegend: false,
                     hoverinfo: "skip", name: name});
      }
      traces.push({x: agg.epochs, y: agg.mean, customdata: agg.std.map((s, k) => [s, agg.count[k]]),
                   mode: "lines", line: {color: c, width: 2}, name: esc(short(variant.label)),
                   legendgroup: name,
                   hovertemplate: `${name}<br>${state.x} %{x}<br>${esc(column)} %{y:.6g} \u00b1 ` +
                                  "%{customdata[0]:.3g} (%{customdata[1]} runs)<extra></extra>"});
      runs.forEach((r, k) => {
        const stop = lastFinite(smoothed[k].epochs, smoothed[k].values);
        if (stop) {
          traces.push(divergedMarker(stop, c, name,
            `${esc(r.name)} (seed ${esc(r.seed)}) diverged after ${state.x} ${stop[0]}`));
        }
      });
    });
    return traces;
  }
  // Curves are smoothed over epochs and drawn against the chosen x: the epoch, or the loss
  // evaluations spent by then (metrics.csv's evaluations column).
  function xValues(run) {
    return state.x === "evaluations" && run.curves.evaluations ? run.curves.evaluations : run.epochs;
  }
  function drawCurves() {
    const grouped = !state.seeds && DATA.variants.some((v) => v.runs.length > 1);
    for (const chart of charts) {
      if (chart.extra && !state.extra) continue;
      const traces = grouped ? variantTraces(chart.column) : runTraces(chart.column);
      Plotly.react(chart.div, traces, {
        title: {text: esc(chart.column), font: {size: 14}},
        margin: {l: 55, r: 10, t: 35, b: 40}, hovermode: "closest",
        xaxis: {title: {text: state.x}, type: state.logx[chart.column] ? "log" : "linear",
                exponentformat: "e"},
        yaxis: {type: state.logy[chart.column] ? "log" : "linear", exponentformat: "e"},
        legend: {font: {size: 10}}, showlegend: traces.length > 1}, CONFIG);
    }
  }

  // -- settings against results --------------------------------------------------------------
  function parallel() {
    const rows = DATA.table.rows;
    if (rows.length < 3) return;
    const figures = DATA.table.columns.filter((c) => /^(final|best)_/.test(c));
    const dims = [];
    for (const column of [...DATA.table.settings, ...figures]) {
      const values = rows.map((r) => r[column]);
      if (values.every((v) => v === null || v === undefined)) continue;
      if (values.every((v) => v === null || typeof v === "number")) {
        dims.push({label: esc(column), values: values.map((v) => finite(v) ? v : null)});
      } else {
        const names = Array.from(new Set(values.map((v) => fmt(v))));
        dims.push({label: esc(column), values: values.map((v) => names.indexOf(fmt(v))),
                   tickvals: names.map((_, k) => k), ticktext: names.map(esc)});
      }
    }
    if (dims.length < 2) return;
    const box = section("Settings against results");
    const div = el("div", {id: "parallel", style: "height: 420px"});
    box.appendChild(div);
    const colourBy = dims.find((d) => /final_loss/.test(d.label)) || dims[dims.length - 1];
    lazily(div, () => Plotly.newPlot(div, [{type: "parcoords", dimensions: dims,
      line: {color: colourBy.values, colorscale: "Viridis", showscale: true}}],
      {margin: {l: 80, r: 80, t: 50, b: 30}}, CONFIG));
  }

  // -- what the network computed ------------------------------------------------------------
  function pictures() {
    const pic = DATA.pictures;
    if (!pic) return;
    const box = section(pic.kind === "boundary" ? "Decision boundary" : "Fitted curve");
    if (pic.note) box.appendChild(el("p", {class: "note"}, pic.note));
    if (!pic.panels) return;
    if (pic.kind === "boundary") {
      for (const p of pic.panels) p.frames = p.frames.map((f) => decodeFrame(f, p.x.length, pic.scale));
    }
    const n = pic.panels.length, cols = Math.min(n, 4), rows = Math.ceil(n / cols);
    const controls = el("div", {class: "controls"});
    const start = pic.epochs.length - 1;  // the trained network first; the slider goes back
    const slider = el("input", {type: "range", min: "0", max: String(start),
                                step: "1", value: String(start), id: "epoch-slider"});
    const shown = el("span", {id: "epoch-value"}, sliderText(pic, start));
    const label = el("label", {}, "epoch ");
    label.append(slider, " ", shown);
    controls.appendChild(label);
    box.appendChild(controls);
    const div = el("div", {id: "pictures", style: `height: ${Math.max(320, 300 * rows)}px`});
    box.appendChild(div);
    const traces = [], moving = [], layout = {
      grid: {rows, columns: cols, pattern: "independent"}, margin: {l: 50, r: 20, t: 40, b: 40},
      showlegend: false, annotations: [], images: [], hovermode: "closest"};
    const regions = pic.kind === "boundary" ? new Regions(pic) : null;
    pic.panels.forEach((panel, k) => {
      const axis = k === 0 ? "" : String(k + 1);
      const xa = "x" + axis, ya = "y" + axis;
      if (regions) layout.images.push(regions.image(k, start, xa, ya));
      for (const [part, pts] of Object.entries(panel.points)) traces.push(pointsTrace(pic, part, pts, xa, ya));
      if (pic.kind === "fit") {
        moving.push(traces.length);
        traces.push({type: "scatter", x: panel.x, y: panel.frames[start][0], mode: "lines",
                     line: {color: "#d62728", width: 2}, xaxis: xa, yaxis: ya, name: "network",
                     hovertemplate: "x %{x:.4g}<br>network %{y:.4g}<extra></extra>"});
      }
      const range = (v) => [v[0], v[v.length - 1]];
      layout["xaxis" + axis] = {title: {text: esc(pic.features[0] || "")}, zeroline: false,
                                range: regions ? range(panel.x) : undefined};
      layout["yaxis" + axis] = {title: {text: esc(pic.kind === "boundary" ? pic.features[1] || ""
                                                                          : "target")},
                                zeroline: false, range: regions ? range(panel.y) : undefined};
      if (n > 1) layout.annotations.push({text: esc(panel.label), showarrow: false,
        xref: xa + " domain", yref: ya + " domain", x: 0.5, y: 1.0, yanchor: "bottom",
        font: {size: 11}});
    });
    if (regions && pic.binary) traces.push(regions.colourBar());
    const draw = lazily(div, () => Plotly.newPlot(div, traces, layout, CONFIG));
    // A slider move redraws only what moves: the region images (a layout change Plotly draws
    // without redrawing the traces: about 5 ms for 9 panels, against 270 ms as heat maps) or
    // the fitted curves.
    function show(frame) {
      draw();
      state.frame = frame;
      shown.textContent = sliderText(pic, frame);
      if (regions) {
        const update = {};
        pic.panels.forEach((_, k) => { update[`images[${k}].source`] = regions.url(k, frame); });
        return Plotly.relayout(div, update);
      }
      return Plotly.restyle(div, {y: pic.panels.map((p) => p.frames[frame][0])}, moving);
    }
    slider.addEventListener("input", () => show(+slider.value));
    window.nntrainView.showFrame = show;
  }
  // "epoch 40", and each panel's own snapshot epoch where the runs' snapshots differ
  function sliderText(pic, frame) {
    const own = new Set(pic.panels.map((p) => p.snapshot_epochs[frame]));
    const epoch = pic.epochs[frame];
    if (own.size === 1 && own.has(epoch)) return "epoch " + epoch;
    return `epoch ${epoch} (snapshots: ${pic.panels.map((p) => p.snapshot_epochs[frame]).join(", ")})`;
  }
  // The decision regions as pictures, one per panel and frame (made when first shown): binary,
  // P(class 1) from pale blue through white to pale red; more classes, the likeliest class's
  // colour, paler where the network is less sure (z = class + confidence); white where the
  // output is not finite.
  class Regions {
    constructor(pic) {
      this.pic = pic;
      this.cache = new Map();
      this.classes = pic.classes.length ? pic.classes : ["0", "1"];
      // P = 0.5 is a light grey, not white: an undecided network (zero init) is drawn, not blank
      this.stops = [[0, [166, 200, 228]], [0.5, [226, 226, 226]], [1, [243, 165, 166]]];
      this.palette = this.classes.map((_, i) => [1, 3, 5].map((j) => parseInt(colour(i).slice(j, j + 2), 16)));
    }
    rgb(z) {
      if (z === null) return [255, 255, 255];
      if (this.pic.binary) {
        const [a, b] = z <= 0.5 ? [this.stops[0], this.stops[1]] : [this.stops[1], this.stops[2]];
        const t = (z - a[0]) / (b[0] - a[0]);
        return a[1].map((v, i) => v + t * (b[1][i] - v));
      }
      const k = Math.floor(z), strength = 0.1 + 0.4 * (z - k);
      return this.palette[k % this.palette.length].map((v) => 255 - strength * (255 - v));
    }
    url(k, frame) {
      const key = k + "," + frame;
      if (!this.cache.has(key)) this.cache.set(key, this.draw(this.pic.panels[k].frames[frame]));
      return this.cache.get(key);
    }
    draw(z) {
      const canvas = document.createElement("canvas");
      canvas.height = z.length;
      canvas.width = z[0].length;
      const context = canvas.getContext("2d");
      const image = context.createImageData(canvas.width, canvas.height);
      for (let i = 0; i < canvas.height; i++) {
        const row = z[canvas.height - 1 - i];  // the picture's top row is the largest y
        for (let j = 0; j < canvas.width; j++) {
          const at = 4 * (i * canvas.width + j), [r, g, b] = this.rgb(row[j]);
          image.data[at] = r; image.data[at + 1] = g; image.data[at + 2] = b; image.data[at + 3] = 255;
        }
      }
      context.putImageData(image, 0, 0);
      return canvas.toDataURL();
    }
    image(k, frame, xa, ya) {
      const p = this.pic.panels[k], x = p.x, y = p.y;
      return {source: this.url(k, frame), xref: xa, yref: ya, x: x[0], y: y[y.length - 1],
              sizex: x[x.length - 1] - x[0], sizey: y[y.length - 1] - y[0], sizing: "stretch",
              layer: "below"};
    }
    colourBar() {  // the key of P(class 1): a trace with no visible point
      const name = esc(this.classes[1] ?? "1");
      return {type: "scatter", mode: "markers", x: [null], y: [null], hoverinfo: "skip",
              name: "key", marker: {color: [0, 1], cmin: 0, cmax: 1, showscale: true,
                colorscale: this.stops.map(([v, c]) => [v, `rgb(${c.join(",")})`]),
                colorbar: {title: {text: `P(${name})`}, len: 0.6}}};
    }
  }
  function rgba(hex, alpha) {
    const rgb = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    return `rgba(${rgb.join(",")},${alpha})`;
  }
  function pointsTrace(pic, part, pts, xa, ya) {
    const classes = pic.classes;
    const train = part === "train";
    const trace = {type: "scatter", mode: "markers", x: pts.x, y: pts.y, xaxis: xa, yaxis: ya,
                   name: train ? "training" : "validation"};
    if (pic.kind === "boundary") {
      const cs = pts.c.map((c) => colour(c));
      trace.marker = train ? {color: cs, size: 6, line: {color: "white", width: 0.5}}
                           : {color: "rgba(0,0,0,0)", size: 7, symbol: "diamond",
                              line: {color: cs, width: 1.5}};
      trace.customdata = pts.c.map((c) => esc(classes[c] ?? c));
      trace.hovertemplate = `${train ? "training" : "validation"}: %{customdata}<extra></extra>`;
    } else {
      trace.marker = train ? {color: "#8c8c8c", size: 5}
                           : {color: "rgba(0,0,0,0)", size: 6, symbol: "diamond",
                              line: {color: "#4d4d4d", width: 1.2}};
      trace.hovertemplate = `${train ? "training" : "validation"} %{x:.4g}, %{y:.4g}<extra></extra>`;
    }
    return trace;
  }

  // -- the loss surface (view --landscape) ----------------------------------------------------
  function surfaces() {
    const found = DATA.surfaces;
    if (!found) return;
    const box = section("Loss surface E(W) around the trained parameters");
    box.appendChild(el("p", {class: "note"}, found.along === "path"
      ? "On the plane of the path's two principal components, the path drawn; the star is " +
        "the trained W. Colours: log10 E where E spans more than a factor 10."
      : "Along two filter-normalized random directions (Li et al. 2018); the star is the " +
        "trained W. Colours: log10 E where E spans more than a factor 10."));
    if (found.note) box.appendChild(el("p", {class: "note"}, found.note));
    const grid = el("div", {class: "charts", id: "surfaces"});
    box.appendChild(grid);
    found.panels.forEach((panel, k) => {
      const div = el("div", {class: "chart", id: "surface-" + k, style: "height: 420px"});
      grid.appendChild(div);
      lazily(div, () => drawSurface(div, panel));
    });
  }
  function drawSurface(div, panel) {
    const values = panel.E.flat().filter(finite);
    const low = Math.min(...values), high = Math.max(...values);
    const log = low > 0 && high / low > 10;
    const z = panel.E.map((row) => row.map((v) => finite(v) ? (log ? Math.log10(v) : v) : null));
    const traces = [{type: "contour", x: panel.a, y: panel.b, z, customdata: panel.E,
      colorscale: "Viridis", ncontours: 16, contours: {coloring: "heatmap"},
      colorbar: {title: {text: log ? "log10 E" : "E"}, len: 0.8},
      hovertemplate: "(%{x:.3g}, %{y:.3g})<br>E %{customdata:.5g}<extra></extra>"}];
    panel.tracks.forEach((track, i) => {
      traces.push({type: "scatter", mode: "lines+markers", name: esc(track.label),
        x: track.coords.map((c) => c[0]), y: track.coords.map((c) => c[1]),
        customdata: track.epochs, line: {color: i ? colour(i + 1) : "#ffffff", width: 2},
        marker: {size: 4, color: i ? colour(i + 1) : "#ffffff"},
        hovertemplate: `${esc(track.label)}<br>epoch %{customdata}<extra></extra>`});
    });
    traces.push({type: "scatter", mode: "markers", x: [0], y: [0], name: "trained W",
      marker: {symbol: "star", size: 14, color: "#d62728", line: {color: "white", width: 1}},
      hovertemplate: "the trained W<extra></extra>"});
    Plotly.newPlot(div, traces, {
      title: {text: esc(panel.label || "") + (panel.note ? `<br><sub>${esc(panel.note)}</sub>` : ""),
              font: {size: 12}},
      margin: {l: 60, r: 10, t: 50, b: 50}, showlegend: false, hovermode: "closest",
      xaxis: {title: {text: esc(panel.axes[0]), font: {size: 11}}},
      yaxis: {title: {text: esc(panel.axes[1]), font: {size: 11}}}}, CONFIG);
  }

  // -- inside the network --------------------------------------------------------------------
  function layers() {
    const names = Object.keys(DATA.layers).filter((n) => DATA.layers[n]);
    if (!names.length) return;
    const box = section("Inside the network (layers.csv)");
    const controls = el("div", {class: "controls"});
    const select = el("select", {id: "layers-run"});
    for (const n of names) select.appendChild(el("option", {value: n}, n));
    const label = el("label", {}, "run ");
    label.appendChild(select);
    controls.appendChild(label);
    box.appendChild(controls);
    const grid = el("div", {class: "charts", id: "layers"});
    box.appendChild(grid);
    function draw() {
      const data = DATA.layers[select.value];
      grid.replaceChildren();
      for (const [column, z] of Object.entries(data.maps)) {
        const div = el("div", {class: "chart", "data-column": column});
        grid.appendChild(div);
        Plotly.newPlot(div, [{type: "heatmap", x: data.epochs, y: data.layers, z: z,
          colorscale: "Viridis", hoverongaps: false,
          hovertemplate: `layer %{y}, epoch %{x}<br>${esc(column)} %{z:.4g}<extra></extra>`}],
          {title: {text: esc(column), font: {size: 14}}, margin: {l: 55, r: 10, t: 35, b: 40},
           xaxis: {title: {text: "epoch"}}, yaxis: {title: {text: "layer"}, dtick: 1}}, CONFIG);
      }
    }
    select.addEventListener("change", draw);
    lazily(grid, draw);
  }

  // -- learning-rate range tests (lr-find --out folders) ------------------------------------
  function ranges() {
    if (!DATA.ranges || !DATA.ranges.length) return;
    const box = section("Learning-rate range test (lr-find)");
    box.appendChild(el("p", {class: "note"}, "The suggestions are heuristics, each labelled " +
      "with its rule; the raw loss is faint behind the smoothed one."));
    const grid = el("div", {class: "charts", id: "ranges"});
    box.appendChild(grid);
    DATA.ranges.forEach((test, k) => {
      const div = el("div", {class: "chart", id: "range-" + k});
      grid.appendChild(div);
      const traces = [
        {x: test.lr, y: test.loss, mode: "lines", name: "loss", opacity: 0.3,
         line: {color: colour(0), width: 1}, hovertemplate: "lr %{x:.3g}<br>loss %{y:.4g}<extra></extra>"},
        {x: test.lr, y: test.smoothed, mode: "lines", name: "smoothed", line: {color: colour(0), width: 2},
         hovertemplate: "lr %{x:.3g}<br>smoothed %{y:.4g}<extra></extra>"}];
      const shapes = [], annotations = [];
      Object.entries(test.suggestions).forEach(([rule, lr], i) => {
        if (!finite(lr)) return;
        shapes.push({type: "line", xref: "x", yref: "paper", x0: lr, x1: lr, y0: 0, y1: 1,
                     line: {color: colour(i + 1), dash: "dash", width: 1.5}});
        annotations.push({x: Math.log10(lr), xref: "x", yref: "paper", y: 1 - 0.08 * i,
                          text: esc(`${rule} ${+lr.toPrecision(3)}`), showarrow: false,
                          xanchor: "left", font: {size: 11, color: colour(i + 1)}});
      });
      const finiteLosses = test.smoothed.filter(finite);
      const low = Math.min(...finiteLosses, ...test.loss.filter(finite)), first = finiteLosses[0];
      Plotly.newPlot(div, traces, {
        title: {text: esc(test.name), font: {size: 13}}, shapes, annotations,
        margin: {l: 55, r: 10, t: 35, b: 40}, hovermode: "closest", showlegend: false,
        xaxis: {type: "log", title: {text: "learning rate"}},
        yaxis: {title: {text: "loss"}, range: finite(low) && finite(first)
          ? [low - 0.1 * Math.abs(first - low), first + 0.5 * Math.abs(first - low)] : undefined}},
        CONFIG);
    });
  }

  // -- configs -------------------------------------------------------------------------------
  function configs() {
    if (!DATA.runs.length) return;
    const box = section("Configs");
    for (const run of DATA.runs) {
      const details = el("details");
      details.appendChild(el("summary", {}, `${run.name} (${run.status})`));
      const command = el("p", {}, "reproduce: ");
      command.appendChild(el("code", {class: "command"}, run.command));
      details.append(command, el("pre", {}, run.config));
      box.appendChild(details);
    }
  }

  window.nntrainView = {smooth, aggregate, lastFinite, decodeFrame, drawAll, data: DATA, state,
                        redrawCurves: () => drawCurves()};
  const marks = window.nntrainView.marks = [["start", performance.now()]];
  for (const part of [header, table, curvesSection, parallel, pictures, surfaces, ranges, layers, configs]) {
    part();
    marks.push([part.name, Math.round(performance.now())]);
  }
  window.nntrainView.readyMs = performance.now();
  document.body.setAttribute("data-ready", "1");
})();
