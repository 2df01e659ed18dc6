// The waterfall's collapsible tree (portal/traces/pages/trace.html): a span's toggle hides
// or shows its descendants. Without JavaScript every span simply stays visible.
(function () {
  "use strict";

  function rowsOf(list) {
    return Array.prototype.slice.call(list.querySelectorAll(":scope > .wf-row"));
  }

  // Rows are in tree order (a span, then its subtree): a row is shown when no ancestor of
  // it is collapsed, i.e. no collapsed row above it has a smaller depth with nothing between.
  function refresh(rows) {
    var hiddenBelow = Infinity;
    rows.forEach(function (row) {
      var depth = Number(row.dataset.depth);
      if (depth <= hiddenBelow) { hiddenBelow = Infinity; row.hidden = false; } else { row.hidden = true; return; }
      var toggle = row.querySelector(":scope > .wf-line .wf-toggle");
      if (toggle && toggle.getAttribute("aria-expanded") === "false") { hiddenBelow = depth; }
    });
  }

  function setExpanded(toggle, expanded) {
    toggle.setAttribute("aria-expanded", expanded ? "true" : "false");
    toggle.setAttribute("aria-label", toggle.getAttribute("aria-label").replace(/^(Collapse|Expand)/, expanded ? "Collapse" : "Expand"));
  }

  function init() {
    var list = document.querySelector(".wf-rows");
    if (!list) { return; }
    var rows = rowsOf(list);
    list.addEventListener("click", function (event) {
      var toggle = event.target.closest(".wf-toggle");
      if (!toggle) { return; }
      setExpanded(toggle, toggle.getAttribute("aria-expanded") !== "true");
      refresh(rows);
    });
    document.querySelectorAll("[data-waterfall-action]").forEach(function (button) {
      button.addEventListener("click", function () {
        var expand = button.dataset.waterfallAction === "expand";
        list.querySelectorAll(".wf-toggle").forEach(function (toggle) { setExpanded(toggle, expand); });
        refresh(rows);
      });
    });
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
