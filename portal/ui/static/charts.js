/* What every page that draws uPlot charts shares (the SLO, cost service and model pages):
 * theme colours from the stylesheet, charts drawn from the JSON a page embeds, and charts
 * that follow their box's width. Loaded (deferred) after uPlot and before the page's own
 * script, which passes how to draw one chart. No inline handlers, no eval: works under a
 * strict Content-Security-Policy. */
(function () {
  "use strict";

  var MIN_WIDTH = 280;

  function cssColor(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  /* Draw ``plot`` options into ``target`` at its width; redraw when the box changes width. */
  function plotIn(target, options, data, height) {
    var plot = new uPlot(options(Math.max(target.clientWidth, MIN_WIDTH)), data, target);
    if (typeof ResizeObserver === "function") {
      new ResizeObserver(function () {
        var next = Math.max(target.clientWidth, MIN_WIDTH);
        if (Math.abs(next - plot.width) > 2) { plot.setSize({ width: next, height: height }); }
      }).observe(target);
    }
    return plot;
  }

  /* Once the page is parsed, call ``draw(target, chart)`` for each element whose
   * ``attribute`` names a chart of the JSON in #``dataId`` (``{charts: [{id, x, ...}]}``)
   * that has points, once per element. */
  function mount(dataId, attribute, draw) {
    function init() {
      var source = document.getElementById(dataId);
      if (!source || typeof uPlot !== "function") { return; }
      var charts = {};
      JSON.parse(source.textContent).charts.forEach(function (chart) { charts[chart.id] = chart; });
      document.querySelectorAll("[" + attribute + "]").forEach(function (target) {
        var chart = charts[target.getAttribute(attribute)];
        if (chart && chart.x.length && !target.hasAttribute("data-drawn")) {
          target.setAttribute("data-drawn", "");
          draw(target, chart);
        }
      });
    }
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", init);
    } else {
      init();
    }
  }

  window.portalCharts = { cssColor: cssColor, plotIn: plotIn, mount: mount, MIN_WIDTH: MIN_WIDTH };
})();
