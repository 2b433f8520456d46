// The explainer page: reads the JSON the C# side embedded (#explain-data) and draws every section with plain DOM,
// canvas and SVG. No network, no libraries. Matrices arrive as base64 little-endian float32 arrays.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("explain-data").textContent);
  var tooltip = document.getElementById("tooltip");
  var SVG = "http://www.w3.org/2000/svg";

  function floats(base64) {
    if (!base64) return null;
    var bytes = atob(base64);
    var buffer = new ArrayBuffer(bytes.length);
    var view = new Uint8Array(buffer);
    for (var i = 0; i < bytes.length; i++) view[i] = bytes.charCodeAt(i);
    return new Float32Array(buffer);
  }

  function matrix(m) {
    if (m.decoded) return m.decoded;
    m.decoded = { rows: m.rowStarts.length - 1, cols: m.colStarts.length - 1, rowStarts: m.rowStarts, colStarts: m.colStarts,
      values: floats(m.values), min: floats(m.min), max: floats(m.max), sourceRows: m.sourceRows, sourceCols: m.sourceCols };
    return m.decoded;
  }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function fmt(v) { return Number(v).toPrecision(6); }

  // Sequential (0 → max): white to deep blue. Diverging (−a … a): blue, white, red.
  function sequential(v, max) {
    var x = max > 0 ? Math.max(0, Math.min(1, v / max)) : 0;
    return [Math.round(255 - 225 * x), Math.round(255 - 175 * x), Math.round(255 - 85 * x)];
  }
  function diverging(v, a) {
    var x = a > 0 ? Math.max(-1, Math.min(1, v / a)) : 0;
    if (x >= 0) return [255, Math.round(255 - 190 * x), Math.round(255 - 200 * x)];
    return [Math.round(255 + 200 * x), Math.round(255 + 150 * x), 255];
  }

  function tokenRange(starts, i) {
    var a = starts[i], b = starts[i + 1] - 1;
    var left = data.tokens[a] ? data.tokens[a].text : String(a);
    if (a === b) return a + " " + JSON.stringify(left);
    var right = data.tokens[b] ? data.tokens[b].text : String(b);
    return a + "–" + b + " " + JSON.stringify(left) + "…" + JSON.stringify(right);
  }

  // Draws m on canvas (one pixel per displayed cell, scaled by CSS). masked(i, j) marks causal-mask cells.
  function drawMatrix(canvas, m, options) {
    var d = matrix(m);
    canvas.width = d.cols;
    canvas.height = d.rows;
    var ctx = canvas.getContext("2d");
    var image = ctx.createImageData(d.cols, d.rows);
    var scale = 0;
    for (var k = 0; k < d.values.length; k++) scale = Math.max(scale, Math.abs(d.values[k]));
    for (var i = 0; i < d.rows; i++) {
      for (var j = 0; j < d.cols; j++) {
        var v = d.values[i * d.cols + j];
        var rgb;
        if (options.masked && options.masked(d, i, j)) rgb = (i + j) % 2 ? [200, 200, 200] : [232, 232, 232];
        else rgb = options.signed ? diverging(v, scale) : sequential(v, scale);
        var o = (i * d.cols + j) * 4;
        image.data[o] = rgb[0]; image.data[o + 1] = rgb[1]; image.data[o + 2] = rgb[2]; image.data[o + 3] = 255;
      }
    }
    ctx.putImageData(image, 0, 0);
    if (options.width) {
      canvas.style.width = options.width + "px";
      canvas.style.height = (options.height || options.width) + "px";
    }
    canvas.explainMatrix = m;
    canvas.explainDescribe = options.describe;
  }

  function cellAt(canvas, event) {
    var d = matrix(canvas.explainMatrix);
    var rect = canvas.getBoundingClientRect();
    var j = Math.floor((event.clientX - rect.left) / rect.width * d.cols);
    var i = Math.floor((event.clientY - rect.top) / rect.height * d.rows);
    if (i < 0 || j < 0 || i >= d.rows || j >= d.cols) return null;
    return { d: d, i: i, j: j };
  }

  function showTip(event, text) {
    tooltip.textContent = text;
    tooltip.style.display = "block";
    tooltip.style.left = (event.clientX + 14) + "px";
    tooltip.style.top = (event.clientY + 14) + "px";
  }
  function hideTip() { tooltip.style.display = "none"; }

  function hover(canvas) {
    canvas.addEventListener("mousemove", function (event) {
      var c = cellAt(canvas, event);
      if (!c) { hideTip(); return; }
      var k = c.i * c.d.cols + c.j;
      var text = canvas.explainDescribe(c.d, c.i, c.j) + "\n";
      if (c.d.min) text += "block mean " + fmt(c.d.values[k]) + "  (exact min " + fmt(c.d.min[k]) + ", max " + fmt(c.d.max[k]) + ")";
      else text += "value " + fmt(c.d.values[k]);
      showTip(event, text);
    });
    canvas.addEventListener("mouseleave", hideTip);
  }

  function heatmap(parent, id, m, options) {
    var canvas = el("canvas", { id: id, "class": "heatmap" });
    parent.appendChild(canvas);
    drawMatrix(canvas, m, options);
    hover(canvas);
    return canvas;
  }

  function columnRange(d, j, what) {
    var a = d.colStarts[j], b = d.colStarts[j + 1] - 1;
    return what + " " + (a === b ? a : a + "–" + b);
  }

  // ---- header ----
  var model = data.model;
  document.getElementById("model-line").textContent = (model.name ? model.name + " · " : "") + model.modelType + " · " + model.layers +
    " layers × " + model.heads + " heads · C = " + model.hiddenSize + " · V = " + model.vocabSize + " · " +
    (model.causal ? "decoder (causal attention)" : "encoder (bidirectional attention)") + " · positions: " + model.positionEncoding;
  var form = document.getElementById("explain-form");
  if (data.interactive) {
    form.hidden = false;
    document.getElementById("explain-input").value = data.text;
  }
  document.getElementById("input-text").textContent = data.text;

  // ---- 1. tokens ----
  var tokensDiv = document.getElementById("tokens");
  data.tokens.forEach(function (t) {
    var span = el("span", { "class": "token" + (t.special ? " special" : "") + (t.subword ? " subword" : ""), "data-index": t.index, "data-id": t.id,
      title: "position " + t.index + ", id " + t.id + ", vocabulary string " + JSON.stringify(t.token) +
        (t.special ? ", special token" : ", characters " + t.start + "–" + t.end) + (t.subword ? ", continues the previous word" : "") });
    span.appendChild(el("span", { "class": "text" }, t.text));
    if (t.token !== t.text) span.appendChild(el("span", { "class": "raw" }, t.token));
    span.appendChild(el("span", { "class": "id" }, "#" + t.id));
    span.appendChild(el("span", { "class": "offsets" }, t.special ? "special" : t.start + ":" + t.end));
    tokensDiv.appendChild(span);
  });

  // ---- 2. embeddings ----
  heatmap(document.getElementById("embeddings-panel"), "embeddings-canvas", data.embeddings, {
    signed: true, width: 640, height: Math.max(60, Math.min(420, matrix(data.embeddings).rows * 14)),
    describe: function (d, i, j) { return "token " + tokenRange(d.rowStarts, i) + ", " + columnRange(d, j, "dimension"); } });

  // ---- 3. positions ----
  var positions = data.positions;
  var positionsPanel = document.getElementById("positions-panel");
  var rotary = positions.kind === "rotary";
  document.getElementById("positions-note").textContent = rotary
    ? "Rotary: nothing is added to the embeddings; each head's queries and keys are rotated pair by pair by angle p·θᵢ. Left: cos of the angles (position down, frequency pair across); middle: sin; right: the relative-position profile mean cos(angle(p) − angle(0))."
    : positions.kind === "sinusoidal"
      ? "Sinusoidal (Vaswani et al.): PE(p, 2i) = sin(p / 10000^(2i/C)), PE(p, 2i+1) = cos(…): position down, dimension across. Right: cosine similarity of each position's vector with position 0's."
      : "Learned: the rows of the trained position table the tokens add (position down, dimension across). Right: cosine similarity of each position's vector with position 0's.";
  var positionsHeight = Math.max(60, Math.min(420, matrix(positions.table).rows * 8));
  heatmap(positionsPanel, "positions-canvas", positions.table, { signed: true, width: 420, height: positionsHeight,
    describe: function (d, i, j) { return "position " + (d.rowStarts[i] === d.rowStarts[i + 1] - 1 ? d.rowStarts[i] : d.rowStarts[i] + "–" + (d.rowStarts[i + 1] - 1)) + ", " + columnRange(d, j, rotary ? "pair" : "dimension"); } });
  if (positions.rotarySin) {
    heatmap(positionsPanel, "positions-sin-canvas", positions.rotarySin, { signed: true, width: 420, height: positionsHeight,
      describe: function (d, i, j) { return "sin, position " + d.rowStarts[i] + ", " + columnRange(d, j, "pair"); } });
  }
  (function similarity() {
    var values = floats(positions.relativeSimilarity);
    var w = 320, h = 200, pad = 28;
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("id", "positions-similarity");
    svg.setAttribute("width", w); svg.setAttribute("height", h);
    var lo = Math.min(-1, Math.min.apply(null, Array.from(values))), hi = 1;
    var points = [];
    for (var p = 0; p < values.length; p++) {
      var x = pad + (values.length > 1 ? p / (values.length - 1) : 0) * (w - 2 * pad);
      var y = h - pad - (values[p] - lo) / (hi - lo) * (h - 2 * pad);
      points.push(x.toFixed(1) + "," + y.toFixed(1));
    }
    var zero = h - pad - (0 - lo) / (hi - lo) * (h - 2 * pad);
    svg.innerHTML = '<line x1="' + pad + '" x2="' + (w - pad) + '" y1="' + zero + '" y2="' + zero + '" stroke="#ccc"/>' +
      '<polyline fill="none" stroke="#1f5fa8" stroke-width="1.5" points="' + points.join(" ") + '"/>' +
      '<text x="' + pad + '" y="14" font-size="11">similarity to position 0 (axis ' + lo.toFixed(2) + ' … 1)</text>' +
      '<text x="' + (w - pad) + '" y="' + (h - 8) + '" font-size="11" text-anchor="end">position ' + (values.length - 1) + '</text>';
    positionsPanel.appendChild(svg);
  })();

  // ---- 4. attention ----
  var layerSelect = document.getElementById("layer-select");
  var headSelect = document.getElementById("head-select");
  for (var l = 0; l < data.attention.length; l++) layerSelect.appendChild(el("option", { value: l }, "layer " + l));
  headSelect.appendChild(el("option", { value: "average" }, "average of heads"));
  for (var h = 0; h < model.heads; h++) headSelect.appendChild(el("option", { value: h }, "head " + h));

  function causalMask(d, i, j) { return model.causal && d.colStarts[j] > d.rowStarts[i + 1] - 1; }
  function describeAttention(d, i, j) {
    var text = "query " + tokenRange(d.rowStarts, i) + " → key " + tokenRange(d.colStarts, j);
    if (causalMask(d, i, j)) text += "\nmasked: a decoder token cannot see later tokens";
    return text;
  }
  function selected() {
    var layer = +layerSelect.value;
    var head = headSelect.value;
    var m = head === "average" ? data.attention[layer].average : data.attention[layer].heads[+head];
    return { layer: layer, head: head, m: m };
  }

  var attentionCanvas = el("canvas", { id: "attention-canvas", "class": "heatmap" });
  document.getElementById("attention-heatmap").appendChild(attentionCanvas);
  hover(attentionCanvas);

  function drawLines(m) {
    var d = matrix(m);
    var svg = document.getElementById("attention-lines");
    var rowH = Math.max(12, Math.min(18, 520 / Math.max(d.rows, d.cols)));
    var w = 460, h = Math.max(d.rows, d.cols) * rowH + 10, left = 150, right = w - 150;
    svg.setAttribute("width", w); svg.setAttribute("height", h);
    var maxV = 0;
    for (var k = 0; k < d.values.length; k++) maxV = Math.max(maxV, d.values[k]);
    var parts = [];
    for (var i = 0; i < d.rows; i++) {
      for (var j = 0; j < d.cols; j++) {
        var v = d.values[i * d.cols + j];
        if (maxV <= 0 || v < 0.02 * maxV) continue;
        parts.push('<line class="attn-line" data-q="' + i + '" x1="' + left + '" y1="' + (i * rowH + rowH / 2 + 5) + '" x2="' + right + '" y2="' + (j * rowH + rowH / 2 + 5) +
          '" stroke="#1f5fa8" stroke-opacity="' + (v / maxV).toFixed(3) + '" stroke-width="' + (0.5 + 2.5 * v / maxV).toFixed(2) + '"/>');
      }
    }
    function label(starts, i, x, anchor, cls) {
      var a = starts[i], b = starts[i + 1] - 1;
      var text = data.tokens[a].text + (a === b ? "" : "…" + data.tokens[b].text);
      var safe = text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
      return '<text class="' + cls + '" data-i="' + i + '" x="' + x + '" y="' + (i * rowH + rowH / 2 + 9) + '" text-anchor="' + anchor + '">' + safe + "</text>";
    }
    for (var q = 0; q < d.rows; q++) parts.push(label(d.rowStarts, q, left - 6, "end", "query"));
    for (var c = 0; c < d.cols; c++) parts.push(label(d.colStarts, c, right + 6, "start", "key"));
    svg.innerHTML = parts.join("");
    svg.querySelectorAll("text.query").forEach(function (t) {
      t.addEventListener("mouseenter", function () {
        t.classList.add("active");
        svg.querySelectorAll("line.attn-line").forEach(function (line) { line.style.display = line.getAttribute("data-q") === t.getAttribute("data-i") ? "" : "none"; });
      });
      t.addEventListener("mouseleave", function () {
        t.classList.remove("active");
        svg.querySelectorAll("line.attn-line").forEach(function (line) { line.style.display = ""; });
      });
    });
  }

  function redrawAttention() {
    var s = selected();
    drawMatrix(attentionCanvas, s.m, { width: 420, masked: causalMask, describe: describeAttention });
    attentionCanvas.setAttribute("data-layer", s.layer);
    attentionCanvas.setAttribute("data-head", s.head);
    drawLines(s.m);
    document.querySelectorAll("#attention-grid canvas").forEach(function (c) {
      c.classList.toggle("selected", c.getAttribute("data-layer") === String(s.layer) && c.getAttribute("data-head") === String(s.head));
    });
  }
  layerSelect.addEventListener("change", redrawAttention);
  headSelect.addEventListener("change", redrawAttention);

  var grid = document.getElementById("attention-grid");
  grid.style.gridTemplateColumns = "64px repeat(" + (model.heads + 1) + ", 58px)";
  grid.appendChild(el("span", { "class": "label" }, ""));
  for (var hh = 0; hh < model.heads; hh++) grid.appendChild(el("span", { "class": "label" }, "head " + hh));
  grid.appendChild(el("span", { "class": "label" }, "average"));
  data.attention.forEach(function (layer, li) {
    grid.appendChild(el("span", { "class": "label" }, "layer " + li));
    layer.heads.concat([layer.average]).forEach(function (m, hi) {
      var isAverage = hi === layer.heads.length;
      var thumb = el("canvas", { "class": isAverage ? "attention-thumb-average" : "attention-thumb", "data-layer": li, "data-head": isAverage ? "average" : hi,
        title: "layer " + li + ", " + (isAverage ? "average of heads" : "head " + hi) });
      grid.appendChild(thumb);
      drawMatrix(thumb, m, { masked: causalMask, describe: describeAttention });
      thumb.addEventListener("click", function () {
        layerSelect.value = String(li);
        headSelect.value = isAverage ? "average" : String(hi);
        redrawAttention();
      });
    });
  });
  redrawAttention();

  // ---- 5. residual stream ----
  (function norms() {
    var t = data.tokens.length, rows = data.hiddenNorms.length;
    var values = new Float32Array(rows * t);
    data.hiddenNorms.forEach(function (row, l) { values.set(floats(row), l * t); });
    var starts = [];
    for (var i = 0; i <= t; i++) starts.push(i);
    var layerStarts = [];
    for (var r = 0; r <= rows; r++) layerStarts.push(r);
    var m = { decoded: { rows: rows, cols: t, rowStarts: layerStarts, colStarts: starts, values: values, min: null, max: null } };
    heatmap(document.getElementById("norms-panel"), "norms-canvas", m, { width: Math.min(900, Math.max(300, t * 14)), height: Math.max(60, rows * 16),
      describe: function (d, i, j) { return (i === 0 ? "embeddings" : "after layer " + (i - 1)) + ", token " + tokenRange(d.colStarts, j) + "\n‖h‖₂"; } });
  })();

  (function lens() {
    var table = document.getElementById("lens-table");
    var head = el("tr");
    head.appendChild(el("th", null, "layer \\ token"));
    data.lens.positions.forEach(function (p) { head.appendChild(el("th", { title: "position " + p }, data.tokens[p].text)); });
    table.appendChild(head);
    data.lens.layers.forEach(function (layer, l) {
      var tr = el("tr");
      tr.appendChild(el("th", null, l === 0 ? "embeddings" : "layer " + (l - 1)));
      layer.forEach(function (candidates, k) {
        var best = candidates[0];
        var td = el("td", { "class": "lens-cell", "data-layer": l, "data-position": data.lens.positions[k],
          title: candidates.map(function (c) { return JSON.stringify(c.token) + " " + c.probability.toFixed(4); }).join("\n") }, best.token);
        td.style.background = "rgba(31, 95, 168, " + Math.min(0.85, best.probability).toFixed(3) + ")";
        if (best.probability > 0.5) td.style.color = "#fff";
        tr.appendChild(td);
      });
      table.appendChild(tr);
    });
    document.getElementById("lens-note").textContent = "Each row reads one layer's hidden state through the output head (" + data.lens.head +
      "): the most likely token and, on hover, the top " + data.lens.layers[0][0].length + ". " +
      (data.lens.positions.length < data.tokens.length ? "Shown for " + data.lens.positions.length + " of " + data.tokens.length + " positions (evenly spaced, plus every [MASK] and the last token)." : "");
  })();

  // ---- 6. output ----
  (function output() {
    var div = document.getElementById("output");
    var out = data.output;
    function list(candidates) {
      var ol = el("ol", { "class": "predictions" });
      candidates.forEach(function (c) {
        var li = el("li", { "class": "prediction", "data-id": c.id }, JSON.stringify(c.token) + "  " + c.probability.toFixed(4));
        var bar = el("span", { "class": "bar" });
        bar.style.width = Math.round(200 * c.probability) + "px";
        li.appendChild(bar);
        ol.appendChild(li);
      });
      return ol;
    }
    if (out.kind === "causal-lm") {
      var n = out.next;
      div.appendChild(el("p", { "class": "note" }, "Next token after " + JSON.stringify(data.tokens[data.tokens.length - 1].text) +
        ". Left: softmax of the logits. Right: after the generation processors — temperature " + n.temperature + ", top-k " + (n.topK || "off") +
        ", top-p " + n.topP + " — " + n.kept + " tokens keep a non-zero probability."));
      var row = el("div", { "class": "row" });
      var a = el("div", { "class": "panel", id: "next-raw" }); a.appendChild(el("h3", null, "raw")); a.appendChild(list(n.raw));
      var b = el("div", { "class": "panel", id: "next-processed" }); b.appendChild(el("h3", null, "as sampled")); b.appendChild(list(n.processed));
      row.appendChild(a); row.appendChild(b); div.appendChild(row);
      return;
    }
    if (out.kind === "embedding-projection") {
      div.appendChild(el("p", { "class": "note" }, "This checkpoint is a bare encoder (no masked-LM head): the last hidden state at each [MASK] is compared with every word embedding (dot product, softmax). A *ForMaskedLM checkpoint gives real predictions."));
    }
    if (out.masks.length === 0) {
      div.appendChild(el("p", { "class": "note" }, "The text has no mask token; put one in (e.g. \"The heart is a [MASK] organ.\") to see the predictions. The logit lens above shows the head's reading at every position."));
    }
    out.masks.forEach(function (mask) {
      var section = el("div", { "class": "mask-prediction", "data-position": mask.position });
      section.appendChild(el("h3", null, "mask at position " + mask.position));
      section.appendChild(list(mask.candidates));
      div.appendChild(section);
    });
  })();
})();
