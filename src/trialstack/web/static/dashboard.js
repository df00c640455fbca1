/* The study dashboard (templates/dashboard/): draws the KRI charts with the vendored Chart.js
   (static/vendor/chart-4.6.2.umd.js, docs/decisions/0009-vendored-chart-library.md) from the configurations the
   server writes in data-charts, links every point to the rows behind it, and keeps the figures live: the server
   sends a `kris` event (…/dashboard/live, server-sent events) whenever the KRIs moved, and the figures fragment is
   fetched again and swapped in, without a reload. The status table holds every number in words. */
(function () {
  "use strict";
  var drawn = [];

  function draw() {
    drawn.forEach(function (chart) { chart.destroy(); });
    drawn = [];
    var holder = document.getElementById("kri-charts");
    if (!holder || typeof window.Chart === "undefined") { return; }
    var specs = JSON.parse(holder.getAttribute("data-charts") || "[]");
    document.querySelectorAll("canvas[data-kri-chart]").forEach(function (canvas) {
      var spec = specs[Number(canvas.getAttribute("data-kri-chart"))];
      if (!spec) { return; }
      var config = spec.config;
      config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options);
      config.options.plugins = { legend: { labels: { filter: function (item, data) {
        return !data.datasets[item.datasetIndex].hideLegend;
      } } } };
      config.options.onClick = function (event, elements) {
        if (!elements.length || !spec.links) { return; }
        var links = spec.links[elements[0].datasetIndex] || spec.links[0];
        var target = links && links[elements[0].index];
        if (target) { window.location.assign(target); }
      };
      drawn.push(new window.Chart(canvas, config));
      canvas.setAttribute("data-drawn", "true");
    });
  }

  function state(text, kind) {
    var badge = document.getElementById("kri-live-state");
    if (!badge) { return; }
    badge.textContent = text;
    badge.className = "chip " + (kind || "chip-status");
  }

  function refresh(box) {
    return fetch(box.getAttribute("data-figures"), { credentials: "same-origin", headers: { "HX-Request": "true" } })
      .then(function (answer) {
        if (!answer.ok) { throw new Error(String(answer.status)); }
        return answer.text();
      })
      .then(function (html) {
        box.innerHTML = html;
        draw();
        state("Live · updated " + new Date().toLocaleTimeString(), "chip-complete");
      });
  }

  function live() {
    var box = document.getElementById("kri-live");
    if (!box || typeof window.EventSource === "undefined") { state("Reload the page for new figures"); return; }
    var source = new window.EventSource(box.getAttribute("data-live"));
    var busy = false;
    var again = false;
    function update() {
      if (busy) { again = true; return; }
      busy = true;
      refresh(box).catch(function () {
        source.close();
        state("Live updates stopped: reload the page (or sign in again)", "chip-overdue");
      }).then(function () {
        busy = false;
        if (again) { again = false; update(); }
      });
    }
    source.addEventListener("open", function () { state("Live", "chip-complete"); });
    source.addEventListener("kris", update);
    source.addEventListener("error", function () {
      if (source.readyState === window.EventSource.CLOSED) {
        state("Live updates stopped: reload the page (or sign in again)", "chip-overdue");
      } else {
        state("Reconnecting…");
      }
    });
  }

  function start() { draw(); live(); }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
