/* Model page: one chart per metric over the model's versions, from the JSON embedded in
 * the page (#model-chart-data), drawn with the vendored uPlot. No inline handlers, no
 * eval: works under a strict Content-Security-Policy. Each [data-model-chart] element names
 * a chart; x is the version number (not time), a version without the metric is a gap.
 * The versions table carries the same numbers for readers without JavaScript. */
(function () {
  "use strict";

  var HEIGHT = 200;

  var charts = window.portalCharts;
  var cssColor = charts.cssColor;

  function number(value) {
    if (value == null) { return "–"; }
    var size = Math.abs(value);
    return size !== 0 && (size < 0.001 || size >= 1e5) ? value.toExponential(2)
      : String(Number(value.toPrecision(4)));
  }

  function options(chart, width) {
    var axisColor = cssColor("--muted", "#5b6576");
    var gridColor = cssColor("--line", "#dde2ea");
    return {
      width: width,
      height: HEIGHT,
      series: [
        { label: "version", value: function (_self, value) { return value == null ? "–" : "v" + value; } },
        {
          label: chart.metric,
          stroke: cssColor("--accent", "#2857d6"),
          width: 2,
          spanGaps: false,
          points: { show: true, size: 5 },
          value: function (_self, value) { return number(value); }
        }
      ],
      scales: { x: { time: false } },
      axes: [
        { stroke: axisColor, grid: { stroke: gridColor, width: 1 },
          values: function (_self, ticks) {
            return ticks.map(function (tick) { return tick === Math.round(tick) ? "v" + tick : ""; });
          } },
        { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, size: 64,
          values: function (_self, ticks) { return ticks.map(number); } }
      ],
      legend: { live: true }
    };
  }

  function draw(target, chart) {
    var data = [chart.x, chart.y];
    charts.plotIn(target, function (width) { return options(chart, width); }, data, HEIGHT);
  }

  charts.mount("model-chart-data", "data-model-chart", draw);
})();
