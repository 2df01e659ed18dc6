// Draws each pollutant's 10-day chart with uPlot from the JSON the page embeds.
// The server renders the legend and a table of the same numbers, so nothing is lost without JS.
(function () {
  "use strict";

  function bandsHook(bands) {
    // European AQI bands as a faint background, under the lines.
    return function (u) {
      var ctx = u.ctx;
      var left = u.bbox.left, width = u.bbox.width, top = u.bbox.top, height = u.bbox.height;
      ctx.save();
      ctx.globalAlpha = 0.16;
      bands.forEach(function (band) {
        var y1 = Math.max(top, u.valToPos(band.to, "y", true));
        var y0 = Math.min(top + height, u.valToPos(band.from, "y", true));
        if (y0 > y1) {
          ctx.fillStyle = band.colour;
          ctx.fillRect(left, y1, width, y0 - y1);
        }
      });
      ctx.restore();
    };
  }

  function draw(element) {
    var source = document.getElementById("chart-data-" + element.dataset.chart);
    if (!source || typeof uPlot === "undefined") {
      return;
    }
    var spec = JSON.parse(source.textContent);
    var data = [spec.x].concat(spec.series.map(function (s) { return s.values; }));
    var series = [{}].concat(spec.series.map(function (s) {
      return {
        label: s.label,
        stroke: s.stroke,
        width: s.width,
        dash: s.dash || undefined,
        spanGaps: false,
        points: { show: !!s.points, size: 8, fill: s.stroke },
        value: function (u, v) { return v == null ? "–" : v.toFixed(1) + " " + spec.unit; }
      };
    }));
    var width = Math.max(280, element.clientWidth || 600);
    var chart = new uPlot({
      width: width,
      height: 300,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true },
        y: { range: function () { return [0, spec.yMax]; } }
      },
      axes: [
        { values: "{DD} {MMM}", splits: function () { return spec.x; } },
        { label: spec.unit, size: 60 }
      ],
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      series: series,
      hooks: { drawClear: [bandsHook(spec.bands)] }
    }, data, element);
    window.addEventListener("resize", function () {
      chart.setSize({ width: Math.max(280, element.clientWidth || 600), height: 300 });
    });
  }

  function start() {
    document.querySelectorAll(".chart-canvas[data-chart]").forEach(draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
