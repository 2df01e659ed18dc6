/* Cost pages: draws the daily cost trends embedded in the page (#cost-chart-data) with uPlot.
 * No inline handlers, no eval: works under a strict Content-Security-Policy. Each
 * [data-cost-chart] element names a trend of the JSON; amounts arrive as strings of cents
 * and become numbers here only to be drawn (the page's text carries the exact figures).
 * Redrawn after htmx replaces the results (live filtering). */
(function () {
  "use strict";

  function cssColor(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function money(value) {
    return value == null ? "–" : value.toFixed(2);
  }

  function sparkOptions() {
    return {
      width: 140,
      height: 36,
      series: [{}, {
        stroke: cssColor("--accent", "#2857d6"),
        width: 1.5,
        fill: "rgba(40, 87, 214, 0.10)",
        points: { show: false }
      }],
      scales: { x: { time: true }, y: { range: function (_self, _min, max) {
        return [0, max > 0 ? max * 1.1 : 1];
      } } },
      axes: [{ show: false }, { show: false }],
      legend: { show: false },
      cursor: { show: false }
    };
  }

  function wideOptions(width) {
    var axisColor = cssColor("--muted", "#5b6576");
    var gridColor = cssColor("--line", "#dde2ea");
    return {
      width: width,
      height: 220,
      series: [{}, {
        label: "Daily cost",
        stroke: cssColor("--accent", "#2857d6"),
        width: 2,
        fill: "rgba(40, 87, 214, 0.10)",
        value: function (_self, value) { return money(value); }
      }],
      scales: { x: { time: true }, y: { range: function (_self, _min, max) {
        return [0, max > 0 ? max * 1.1 : 1];
      } } },
      axes: [
        { stroke: axisColor, grid: { stroke: gridColor, width: 1 } },
        { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, size: 64,
          values: function (_self, ticks) { return ticks.map(money); } }
      ],
      legend: { live: true }
    };
  }

  function draw(target, chart) {
    var x = chart.days.map(function (day) { return Date.parse(day + "T00:00:00Z") / 1000; });
    var y = chart.amounts.map(Number);
    if (target.getAttribute("data-cost-chart-size") !== "wide") {
      new uPlot(sparkOptions(), [x, y], target);
      return;
    }
    var plot = new uPlot(wideOptions(Math.max(target.clientWidth, 280)), [x, y], target);
    if (typeof ResizeObserver === "function") {
      new ResizeObserver(function () {
        var next = Math.max(target.clientWidth, 280);
        if (Math.abs(next - plot.width) > 2) { plot.setSize({ width: next, height: 220 }); }
      }).observe(target);
    }
  }

  function init() {
    var source = document.getElementById("cost-chart-data");
    if (!source || typeof uPlot !== "function") { return; }
    var charts = JSON.parse(source.textContent).charts;
    document.querySelectorAll("[data-cost-chart]").forEach(function (target) {
      var chart = charts[target.getAttribute("data-cost-chart")];
      if (chart && chart.days.length && !target.hasAttribute("data-drawn")) {
        target.setAttribute("data-drawn", "");
        draw(target, chart);
      }
    });
  }

  document.addEventListener("htmx:afterSettle", init);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
