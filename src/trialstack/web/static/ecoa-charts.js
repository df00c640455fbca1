/* eCOA score charts on the site's questionnaires page: one line chart per score, drawn with the vendored Chart.js
   (static/vendor/chart-4.6.2.umd.js, docs/decisions/0009-vendored-chart-library.md). The data comes from the page
   (data-series); the entries table below the charts holds the same values in words. */
(function () {
  "use strict";
  function draw() {
    var holder = document.getElementById("ecoa-series");
    if (!holder || typeof window.Chart === "undefined") { return; }
    var series = JSON.parse(holder.getAttribute("data-series") || "[]");
    document.querySelectorAll("canvas[data-ecoa-chart]").forEach(function (canvas) {
      var s = series[Number(canvas.getAttribute("data-ecoa-chart"))];
      if (!s) { return; }
      new window.Chart(canvas, {
        type: "line",
        data: {
          labels: s.points.map(function (p) { return p.x; }),
          datasets: [{ label: s.label, data: s.points.map(function (p) { return p.y; }),
                       borderColor: "#1d4ed8", backgroundColor: "#1d4ed8", tension: 0, pointRadius: 4 }]
        },
        options: { responsive: true, maintainAspectRatio: false, animation: false,
                   plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } }
      });
      canvas.setAttribute("data-drawn", "true");
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
