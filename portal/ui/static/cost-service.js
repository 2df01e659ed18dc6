/* Service cost page (/cost/{service}): draws the request-vs-usage charts of the JSON
 * embedded in the page (#cost-chart-data) with uPlot. Values arrive as strings (the server
 * never turns amounts into floats); they are read as numbers here, for drawing only.
 * No inline handlers, no eval: works under a strict Content-Security-Policy. */
(function () {
  "use strict";

  var charts = window.portalCharts;
  var cssColor = charts.cssColor;

  function styleFor(role) {
    if (role === "request") {
      return { stroke: cssColor("--muted", "#5b6576"), width: 2, dash: [6, 4] };
    }
    return { stroke: cssColor("--accent", "#2857d6"), width: 2, fill: "rgba(40, 87, 214, 0.10)" };
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
        value: function (_self, value) {
          return value == null ? "–" : value.toFixed(3) + " " + chart.unit;
        }
      });
    });
    var axisColor = cssColor("--muted", "#5b6576");
    var gridColor = cssColor("--line", "#dde2ea");
    return {
      width: width,
      height: 220,
      series: series,
      scales: { x: { time: true }, y: { range: function (_self, _min, max) {
        return [0, Math.max((max || 0) * 1.1, 0.01)];
      } } },
      axes: [
        { stroke: axisColor, grid: { stroke: gridColor, width: 1 } },
        { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, size: 64 }
      ],
      legend: { live: true }
    };
  }

  function numbers(values) {
    return values.map(function (value) { return value == null ? null : Number(value); });
  }

  function draw(target, chart) {
    var data = [chart.x].concat(chart.series.map(function (line) { return numbers(line.values); }));
    charts.plotIn(target, function (width) { return options(chart, width); }, data, 220);
  }

  charts.mount("cost-chart-data", "data-cost-chart", draw);
})();
