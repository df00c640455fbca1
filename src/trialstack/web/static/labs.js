/* A subject's laboratory charts (templates/labs/subject.html), drawn with the vendored Chart.js
   (static/vendor/chart-4.6.2.umd.js, docs/decisions/0009-vendored-chart-library.md). The series come from the
   page's <script type="application/json" id="lab-series"> block: per point the value, its flag and the reference
   range, drawn as a shaded band between low and high. The tables on the page hold every value in words. */
(function () {
  "use strict";
  var COLOURS = { L: "#c2410c", H: "#c2410c", LL: "#b91c1c", HH: "#b91c1c" };
  var NORMAL = "#1d4ed8";
  var BAND = "rgba(22, 163, 74, 0.15)";

  function draw() {
    var holder = document.getElementById("lab-series");
    if (!holder || typeof window.Chart === "undefined") { return; }
    var series = JSON.parse(holder.textContent || "[]");
    document.querySelectorAll("canvas[data-lab-chart]").forEach(function (canvas) {
      var s = series[Number(canvas.getAttribute("data-lab-chart"))];
      if (!s) { return; }
      var points = s.points;
      var hasBand = points.some(function (p) { return p.low !== null || p.high !== null; });
      var datasets = [];
      if (hasBand) {
        datasets.push({ label: "Low", data: points.map(function (p) { return p.low; }), borderColor: BAND,
                        backgroundColor: BAND, pointRadius: 0, borderWidth: 1, fill: false, hideLegend: true });
        datasets.push({ label: "Reference range", data: points.map(function (p) { return p.high; }),
                        borderColor: BAND, backgroundColor: BAND, pointRadius: 0, borderWidth: 1, fill: "-1" });
      }
      datasets.push({
        label: s.label, data: points.map(function (p) { return p.y; }), borderColor: NORMAL, tension: 0,
        pointRadius: 5, fill: false,
        pointBackgroundColor: points.map(function (p) { return COLOURS[p.flag] || NORMAL; }),
        pointBorderColor: points.map(function (p) { return COLOURS[p.flag] || NORMAL; })
      });
      var chart = new window.Chart(canvas, {
        type: "line",
        data: { labels: points.map(function (p) { return p.x; }), datasets: datasets },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          plugins: { legend: { labels: { filter: function (item, data) {
            return !data.datasets[item.datasetIndex].hideLegend;
          } } } }
        }
      });
      canvas.setAttribute("data-drawn", "true");
      canvas.setAttribute("data-band", hasBand ? "true" : "false");
      canvas.setAttribute("data-datasets", String(chart.data.datasets.length));
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
