/* SLO detail charts: draws the JSON embedded in the page (#slo-chart-data) with uPlot.
 * No inline handlers, no eval: works under a strict Content-Security-Policy. Each
 * [data-chart] element names a chart of the JSON; the page's tables carry the same numbers
 * for readers without JavaScript. */
(function () {
  "use strict";

  var charts = window.portalCharts;
  var cssColor = charts.cssColor;

  function styleFor(role) {
    switch (role) {
      case "short": return { stroke: cssColor("--accent", "#2857d6"), width: 1.5 };
      case "long": return { stroke: cssColor("--warn", "#a15c00"), width: 2 };
      case "threshold": return { stroke: cssColor("--bad", "#b42318"), width: 1.5, dash: [6, 4] };
      case "budget": return { stroke: cssColor("--ok", "#1c7c43"), width: 2,
        fill: "rgba(28, 124, 67, 0.12)" };
      default: return { stroke: cssColor("--muted", "#5b6576"), width: 1, dash: [2, 4] };
    }
  }

  function compact(value) {
    var size = Math.abs(value);
    if (size >= 1e6) { return (value / 1e6).toFixed(1) + "M"; }
    if (size >= 1e4) { return (value / 1e3).toFixed(0) + "k"; }
    return size >= 100 || value === Math.round(value) ? value.toFixed(0) : value.toFixed(2);
  }

  function formatter(unit) {
    return function (_self, value) {
      if (value == null) { return "–"; }
      return unit === "%" ? value.toFixed(1) + "%" : value.toFixed(2) + "x";
    };
  }

  function options(chart, width) {
    var series = [{}];
    chart.series.forEach(function (line) {
      var style = styleFor(line.role);
      series.push({
        label: line.label,
        stroke: style.stroke,
        width: style.width,
        dash: style.dash,
        fill: style.fill,
        spanGaps: false,
        points: { show: chart.x.length < 3 },
        value: formatter(chart.unit)
      });
    });
    var axisColor = cssColor("--muted", "#5b6576");
    var gridColor = cssColor("--line", "#dde2ea");
    return {
      width: width,
      height: 220,
      series: series,
      scales: {
        x: { time: true, range: function (_self, min, max) {
          return chart.start != null && chart.end != null ? [chart.start, chart.end] : [min, max];
        } },
        y: { range: function (_self, min, max) {
        var low = chart.unit === "%" ? Math.min(0, min) : 0;
        return [low, Math.max(max * 1.1, chart.unit === "%" ? 100 : 1)];
      } }
      },
      axes: [
        { stroke: axisColor, grid: { stroke: gridColor, width: 1 } },
        { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, size: 64,
          values: function (_self, ticks) {
            return ticks.map(function (tick) { return compact(tick) + chart.unit; });
          } }
      ],
      legend: { live: true }
    };
  }

  function draw(target, chart) {
    var data = [chart.x].concat(chart.series.map(function (line) { return line.values; }));
    charts.plotIn(target, function (width) { return options(chart, width); }, data, 220);
  }

  charts.mount("slo-chart-data", "data-chart", draw);
})();
