// Draws each series' chart with uPlot from the JSON the page embeds: the values (left axis),
// the anomaly score (right axis, the alarm line at 1) and the detected windows shaded.
// The server renders the windows as a table too, so nothing is lost without JavaScript.
(function () {
  "use strict";

  function colour(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function shade(windows, palette) {
    // Under the lines: each window as a band (at least 3 px, so a one-point window shows).
    return function (u) {
      var ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
      ctx.save();
      ctx.globalAlpha = 0.2;
      windows.forEach(function (w) {
        var x0 = u.valToPos(w[0], "x", true), x1 = u.valToPos(w[1], "x", true);
        var width = Math.max(3, x1 - x0);
        ctx.fillStyle = palette[w[2]] || palette.warning;
        ctx.fillRect(x0 - (width - (x1 - x0)) / 2, top, width, height);
      });
      ctx.restore();
    };
  }

  function alarmLine(stroke) {
    return function (u) {
      var y = u.valToPos(1, "s", true), ctx = u.ctx;
      ctx.save();
      ctx.strokeStyle = stroke;
      ctx.setLineDash([2, 4]);
      ctx.beginPath();
      ctx.moveTo(u.bbox.left, y);
      ctx.lineTo(u.bbox.left + u.bbox.width, y);
      ctx.stroke();
      ctx.restore();
    };
  }

  function draw(element) {
    var source = document.getElementById("chart-data-" + element.dataset.chart);
    if (!source || typeof uPlot === "undefined" || element.dataset.drawn) {
      return;
    }
    element.dataset.drawn = "1";
    var spec = JSON.parse(source.textContent);
    var top = Math.max(spec.critical + 0.5, Math.max.apply(null, spec.scores.concat([0])) * 1.1);
    var palette = { warning: colour("--warn", "#a15c00"), critical: colour("--bad", "#b42318") };
    var width = function () { return Math.max(280, element.clientWidth || 600); };
    var chart = new uPlot({
      width: width(),
      height: 240,
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: true }, v: { auto: true }, s: { range: function () { return [0, top]; } } },
      axes: [
        {},
        { scale: "v", size: 60 },
        { scale: "s", side: 1, size: 50, grid: { show: false }, label: "score" }
      ],
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      series: [
        {},
        { label: "value", scale: "v", stroke: colour("--value", "#243447"), width: 1.5, spanGaps: false },
        { label: "score", scale: "s", stroke: colour("--score", "#8b3fd1"), width: 1, dash: [5, 3], spanGaps: false }
      ],
      hooks: { drawClear: [shade(spec.windows, palette)], draw: [alarmLine(colour("--muted", "#5b6576"))] }
    }, [spec.x, spec.values, spec.scores], element);
    window.addEventListener("resize", function () { chart.setSize({ width: width(), height: 240 }); });
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
