/*
 * The teacher page's live chart: polls a run's audit samples and draws them as SVG, twin beside fixed.
 * Vanilla JavaScript, no library, no inline script (the page works under a Content-Security-Policy with
 * script-src 'self'). Each [data-run-chart] with a data-url polls every 2 s while its run is active.
 */
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var POLL_MS = 2000;
  var ACTIVE = { starting: true, running: true };
  var WIDTH = 720;
  var HEIGHT = 220;
  var PAD = { left: 40, right: 10, top: 24, bottom: 26 };

  function node(name, attrs, parent) {
    var element = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (key) { element.setAttribute(key, String(attrs[key])); });
    if (parent) parent.appendChild(element);
    return element;
  }

  function text(parent, x, y, content, cls) {
    var label = node("text", { x: x, y: y, "class": cls || "chart-label" }, parent);
    label.textContent = content;
    return label;
  }

  function sidesOf(report) {
    var first = (report.samples || [])[0];
    return first && first.fixed ? ["twin", "fixed"] : ["twin"];
  }

  function draw(container, report) {
    var samples = report.samples || [];
    var counters = report.counters || [];
    container.textContent = "";
    if (!samples.length || !counters.length) return;
    var sides = sidesOf(report);
    var gap = 24;
    var panelWidth = (WIDTH - gap * (sides.length - 1)) / sides.length;
    var lastT = samples[samples.length - 1].t;
    var tMax = Math.max(Number(report.duration_s) || 0, lastT, 10);
    var yMax = 1;
    samples.forEach(function (sample) {
      sides.forEach(function (side) {
        counters.forEach(function (counter) { yMax = Math.max(yMax, (sample[side] || {})[counter.name] || 0); });
      });
    });
    var svg = node("svg", { viewBox: "0 0 " + WIDTH + " " + HEIGHT, "class": "chart", role: "img" }, container);
    node("title", {}, svg).textContent = "Audit counters over time, twin and fixed";
    sides.forEach(function (side, index) {
      var x0 = index * (panelWidth + gap);
      var plotWidth = panelWidth - PAD.left - PAD.right;
      var plotHeight = HEIGHT - PAD.top - PAD.bottom;
      var panel = node("g", { transform: "translate(" + x0 + ",0)", "class": "chart-panel chart-panel--" + side }, svg);
      text(panel, PAD.left, 14, side === "twin" ? "Twin (anti-pattern)" : "Fixed (the shop)", "chart-title");
      node("rect", { x: PAD.left, y: PAD.top, width: plotWidth, height: plotHeight, "class": "chart-frame" }, panel);
      text(panel, PAD.left - 6, PAD.top + 8, String(yMax), "chart-label chart-label--end");
      text(panel, PAD.left - 6, PAD.top + plotHeight, "0", "chart-label chart-label--end");
      text(panel, PAD.left, HEIGHT - 6, "0 s", "chart-label");
      text(panel, PAD.left + plotWidth, HEIGHT - 6, Math.round(tMax) + " s", "chart-label chart-label--end");
      counters.forEach(function (counter, number) {
        var points = samples.map(function (sample) {
          var value = (sample[side] || {})[counter.name] || 0;
          var x = PAD.left + (sample.t / tMax) * plotWidth;
          var y = PAD.top + plotHeight - (value / yMax) * plotHeight;
          return x.toFixed(1) + "," + y.toFixed(1);
        });
        node("polyline", { points: points.join(" "), "class": "chart-line chart-line--" + (number + 1) }, panel);
      });
    });
  }

  function updateTable(card, report) {
    var samples = report.samples || [];
    var last = report.scorecard || samples[samples.length - 1];
    if (!last) return;
    card.querySelectorAll("[data-score] tr[data-counter]").forEach(function (row) {
      var name = row.getAttribute("data-counter");
      row.querySelectorAll("td[data-side]").forEach(function (cell) {
        var values = last[cell.getAttribute("data-side")];
        if (values && name in values) {
          cell.textContent = String(values[name]);
          cell.classList.toggle("is-violation", values[name] > 0);
        }
      });
    });
  }

  function describe(report) {
    var state = ACTIVE[report.status] ? "running" : report.status;
    var line = "Run " + report.id + " (" + report.title + "): " + state;
    if (report.samples && report.samples.length) line += ", " + report.samples[report.samples.length - 1].t + " s";
    if (report.verdict) line += ": " + report.verdict;
    return line + ".";
  }

  function follow(card) {
    var url = card.getAttribute("data-url");
    if (!url) return;
    var chart = card.querySelector("[data-chart]");
    var status = card.querySelector("[data-run-status]");
    function tick() {
      fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error("status " + response.status);
          return response.json();
        })
        .then(function (report) {
          if (chart) draw(chart, report);
          updateTable(card, report);
          if (status) status.textContent = describe(report);
          if (ACTIVE[report.status]) window.setTimeout(tick, POLL_MS);
        })
        .catch(function () {
          if (status) status.textContent = "Lost contact with the shop; retrying…";
          window.setTimeout(tick, POLL_MS * 2);
        });
    }
    tick();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-run-chart]").forEach(follow);
  });
})();
