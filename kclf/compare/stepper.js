/* kclf's step-through (kclf/compare/stepper.py): one .stepper element per experiment, its
   data in a JSON script tag. At step k it draws each backend's point (and the tangent or the
   step −η∇) over the curve or contour image and lists θ_{k−1}, ∇, the loss, η and θ_k per
   backend. Plain DOM and SVG, no library: the page works offline. */
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var MARKERS = ["circle", "square", "triangle", "diamond"];

  function num(v) {  // kclf.jsonio's rule: "nan", "inf", "-inf" stand for themselves
    if (v === null || v === undefined || v === "nan") return NaN;
    if (v === "inf") return Infinity;
    if (v === "-inf") return -Infinity;
    return Number(v);
  }

  function fmt(v) {  // 6 significant digits, as Python's format(v, ".6g") reads back
    if (isNaN(v)) return "NaN";
    if (!isFinite(v)) return v > 0 ? "inf" : "−inf";
    var text = String(Number(v.toPrecision(6)));
    return text.replace("-", "−");
  }

  function el(name, attrs, parent, ns) {
    var node = ns ? document.createElementNS(SVG, name) : document.createElement(name);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  function setup(root) {
    var data = JSON.parse(root.querySelector("script.stepper-data").textContent);
    var runSelect = root.querySelector("select.run");
    var indexSelect = root.querySelector("select.index");
    var indexLabel = root.querySelector(".index-label");
    var slider = root.querySelector("input.step");
    var label = root.querySelector(".step-label");
    var svg = root.querySelector("svg.stepper-plot");
    var table = root.querySelector("table.stepper-values");
    var note = root.querySelector(".stepper-note");
    var img = data.image;
    svg.setAttribute("viewBox", "0 0 " + img.width + " " + img.height);
    svg.setAttribute("width", img.width);
    svg.setAttribute("height", img.height);
    el("image", {href: img.src, x: 0, y: 0, width: img.width, height: img.height}, svg, true);
    var clipId = root.id + "-clip";
    var defs = el("defs", {}, svg, true);
    var clip = el("clipPath", {id: clipId}, defs, true);
    var box = img.box;  // left, top, right, bottom pixels of xlim × ylim
    el("rect", {x: box[0], y: box[1], width: box[2] - box[0], height: box[3] - box[1]}, clip, true);
    var overlay = el("g", {}, svg, true);

    function px(x) { return box[0] + (x - img.xlim[0]) / (img.xlim[1] - img.xlim[0]) * (box[2] - box[0]); }
    function py(y) { return box[3] - (y - img.ylim[0]) / (img.ylim[1] - img.ylim[0]) * (box[3] - box[1]); }
    function inside(x, y) { return x >= box[0] && x <= box[2] && y >= box[1] && y <= box[3]; }
    function clampX(x) { return Math.min(Math.max(x, box[0]), box[2]); }
    function clampY(y) { return Math.min(Math.max(y, box[1]), box[3]); }

    function marker(i, x, y, color, parent) {
      var open = !inside(x, y);
      x = clampX(x); y = clampY(y);
      var r = 6 - 1.2 * i, shape = MARKERS[i % MARKERS.length], node;
      var style = {fill: open ? "white" : color, stroke: open ? color : "black", "stroke-width": 1.2};
      if (shape === "circle") node = el("circle", {cx: x, cy: y, r: r}, parent, true);
      else if (shape === "square") node = el("rect", {x: x - r, y: y - r, width: 2 * r, height: 2 * r}, parent, true);
      else if (shape === "triangle") node = el("polygon", {points: [x, y - r * 1.2, x - r, y + r * 0.8, x + r, y + r * 0.8].join(" ")}, parent, true);
      else node = el("polygon", {points: [x, y - r, x - r, y, x, y + r, x + r, y].join(" ")}, parent, true);
      Object.keys(style).forEach(function (key) { node.setAttribute(key, style[key]); });
      return node;
    }

    function arrow(x0, y0, x1, y1, color, parent) {
      var g = el("g", {"clip-path": "url(#" + clipId + ")"}, parent, true);
      el("line", {x1: x0, y1: y0, x2: x1, y2: y1, stroke: color, "stroke-width": 2}, g, true);
      var angle = Math.atan2(y1 - y0, x1 - x0), h = 9;
      var pts = [x1, y1, x1 - h * Math.cos(angle - 0.4), y1 - h * Math.sin(angle - 0.4),
                 x1 - h * Math.cos(angle + 0.4), y1 - h * Math.sin(angle + 0.4)];
      el("polygon", {points: pts.join(" "), fill: color}, g, true);
    }

    function run() { return data.runs[Number(runSelect.value) || 0]; }

    function chosen(r) {  // the variables shown: (w, b) on a contour, the selected copy on a curve
      if (data.kind === "contour") return [0, 1];
      return [Number(indexSelect.value) || 0];
    }

    function fillIndices() {
      var r = run(), n = r.variables.length;
      indexSelect.innerHTML = "";
      r.variables.forEach(function (v, i) {
        el("option", {value: i}, indexSelect).textContent = data.kind === "curve" && n > 1 ? v.index : v.name;
      });
      indexLabel.hidden = !(data.kind === "curve" && n > 1);
      slider.max = r.steps.length;
      slider.value = 1;
    }

    function span(parent, value, variable) {
      var s = el("span", {"class": "num", "data-value": String(num(value))}, parent);
      if (variable) { s.setAttribute("data-variable", variable.name); s.setAttribute("data-index", variable.index); }
      s.textContent = fmt(num(value));
      return s;
    }

    function cell(row, backend, quantity, values, variables) {
      var td = el("td", {"data-backend": backend, "data-quantity": quantity}, row);
      if (values === null) { td.textContent = "—"; return; }
      if (values.length > 1) td.appendChild(document.createTextNode("("));
      values.forEach(function (v, i) {
        if (i) td.appendChild(document.createTextNode(", "));
        span(td, v, variables ? variables[i] : null);
      });
      if (values.length > 1) td.appendChild(document.createTextNode(")"));
    }

    function render() {
      var r = run(), k = Number(slider.value), i = k - 1, which = chosen(r);
      var step = r.steps[i];
      label.textContent = "step " + step + " of " + r.steps[r.steps.length - 1];
      root.setAttribute("data-step", step);
      var variables = which.map(function (j) { return r.variables[j]; });
      var sub = function (n) { return String(n).replace(/\d/g, function (d) { return "₀₁₂₃₄₅₆₇₈₉"[d]; }); };
      var wb = data.kind === "contour" ? " = (w, b)" : "";
      var rows = [
        ["weight_before", "θ" + sub(step - 1) + wb + ", before the step", "before"],
        ["gradient", "∇ (the gradient applied)", "gradient"],
        ["loss", "loss (this step's batch)", null],
        ["learning_rate", "η (learning rate)", null],
        ["weight_after", "θ" + sub(step) + " = θ" + sub(step - 1) + " − η∇", "after"]
      ];
      table.innerHTML = "";
      var head = el("tr", {}, el("thead", {}, table));
      el("th", {}, head).textContent = "step " + step;
      data.backends.forEach(function (b) {
        var th = el("th", {}, head);
        th.textContent = b;
        th.style.color = data.colors[b];
      });
      var body = el("tbody", {}, table);
      rows.forEach(function (spec) {
        var tr = el("tr", {}, body);
        el("th", {}, tr).textContent = spec[1];
        data.backends.forEach(function (b) {
          var d = r.data[b];
          if (!d) { cell(tr, b, spec[0], null); return; }
          if (spec[2] === null) { cell(tr, b, spec[0], [d[spec[0]][i]]); return; }
          cell(tr, b, spec[0], which.map(function (j) { return d.variables[j][spec[2]][i]; }), variables);
        });
      });
      draw(r, i, which);
    }

    function draw(r, i, which) {
      overlay.innerHTML = "";
      data.backends.forEach(function (b, n) {
        var d = r.data[b], color = data.colors[b];
        if (!d) return;
        var g = el("g", {"class": "backend-" + b}, overlay, true);
        if (data.kind === "curve") {
          var v = d.variables[which[0]];
          var x = num(v.before[i]), y = num(v.f_before[i]), grad = num(v.gradient[i]);
          var xa = num(v.after[i]), ya = num(v.f_after[i]);
          if (!isFinite(x) || !isFinite(y)) return;
          var half = 0.07 * (img.xlim[1] - img.xlim[0]);
          if (isFinite(grad)) {  // the tangent: slope = the recorded gradient
            var t = el("g", {"clip-path": "url(#" + clipId + ")"}, g, true);
            el("line", {x1: px(x - half), y1: py(y - grad * half), x2: px(x + half), y2: py(y + grad * half),
                        stroke: color, "stroke-width": 2.5 - 0.5 * n}, t, true);
          }
          if (isFinite(xa) && isFinite(ya) && n === 0) {
            var c = el("circle", {cx: clampX(px(xa)), cy: clampY(py(ya)), r: 4, fill: "none", stroke: "#555",
                                  "stroke-dasharray": "2,2"}, g, true);
            c.setAttribute("class", "after");
          }
          marker(n, px(x), py(y), color, g);
        } else {
          var w = d.variables[0], bb = d.variables[1];
          var pts = [];
          for (var s = 0; s <= i; s++) {
            var pw = num(w.before[s]), pb = num(bb.before[s]);
            if (isFinite(pw) && isFinite(pb)) pts.push(clampX(px(pw)) + "," + clampY(py(pb)));
          }
          if (n === 0 && pts.length > 1) {
            el("polyline", {points: pts.join(" "), fill: "none", stroke: "#888", "stroke-width": 1,
                            "clip-path": "url(#" + clipId + ")"}, g, true);
          }
          var x0 = num(w.before[i]), y0 = num(bb.before[i]), x1 = num(w.after[i]), y1 = num(bb.after[i]);
          if (!isFinite(x0) || !isFinite(y0)) return;
          if (isFinite(x1) && isFinite(y1)) arrow(px(x0), py(y0), px(x1), py(y1), color, g);
          marker(n, px(x0), py(y0), color, g);
        }
      });
      note.textContent = data.kind === "curve"
        ? "Each backend's point sits at f(θ) before step k; its line's slope is the gradient that " +
          "backend applied (a mini-batch's own, noisy gradient where the run has batches). The dashed " +
          "circle is where the step lands. Markers: " + legend() + "; an open marker is off the axes."
        : "Each backend's point is θ before step k; its arrow is the step −η∇ to θ after it; the grey " +
          "line is the path so far. Markers: " + legend() + "; an open marker is off the axes.";
    }

    function legend() {
      return data.backends.map(function (b, n) { return b + " " + ["●", "■", "▲", "◆"][n % 4]; }).join(", ");
    }

    function move(delta) {
      var k = Math.min(Math.max(Number(slider.value) + delta, 1), Number(slider.max));
      slider.value = k;
      render();
    }

    runSelect.addEventListener("change", function () { fillIndices(); render(); });
    indexSelect.addEventListener("change", render);
    slider.addEventListener("input", render);
    root.querySelector("button.prev").addEventListener("click", function () { move(-1); });
    root.querySelector("button.next").addEventListener("click", function () { move(1); });
    root.addEventListener("keydown", function (event) {
      if (event.target === slider || event.target.tagName === "SELECT") return;  // they handle their own keys
      var keys = {ArrowLeft: -1, ArrowDown: -1, ArrowRight: 1, ArrowUp: 1, PageDown: -10, PageUp: 10};
      if (event.key in keys) { move(keys[event.key]); event.preventDefault(); }
      else if (event.key === "Home") { move(-Infinity); event.preventDefault(); }
      else if (event.key === "End") { move(Infinity); event.preventDefault(); }
    });
    fillIndices();
    render();
  }

  Array.prototype.forEach.call(document.querySelectorAll(".stepper"), setup);
})();
