/* Review comments on the change page. In a diff table that names its comment form's URL
 * (only for those who may comment), each line number becomes a button; a click asks the
 * portal for the comment form of that line and puts it in a row under the line
 * (htmx.ajax), and "Cancel" removes that row. The form itself posts with htmx. Tables that
 * "Show diff" loads later get their buttons when htmx has swapped them in.
 * No inline handlers, no eval: works under a strict Content-Security-Policy. */
(() => {
  function lineCell(row) {
    const cells = row.querySelectorAll(":scope > th");
    if (cells.length === 1) return cells[0];
    if (cells.length !== 2) return null;
    return row.classList.contains("del") ? cells[0] : cells[1];
  }

  function enhance(root) {
    const tables = root.querySelectorAll ? root.querySelectorAll("table.diff-table[data-comment-url]") : [];
    for (const table of tables) {
      for (const row of table.rows) {
        const cell = lineCell(row);
        if (!cell || cell.querySelector("button") || !/^\d+$/.test(cell.textContent)) continue;
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = cell.textContent;
        button.setAttribute("aria-label", `Comment on line ${cell.textContent}`);
        cell.replaceChildren(button);
      }
    }
  }

  function openForm(button) {
    const table = button.closest("table");
    const row = button.closest("tr");
    const open = row.nextElementSibling;
    if (open && open.classList.contains("comment-form-row")) {
      const textarea = open.querySelector("textarea");
      if (textarea) textarea.focus();
      return;
    }
    const side = row.classList.contains("del") ? "old" : "new";
    const line = encodeURIComponent(button.textContent.trim());
    const url = `${table.dataset.commentUrl}&side=${side}&line=${line}`;
    window.htmx.ajax("GET", url, { target: row, swap: "afterend" }).then(() => {
      const added = row.nextElementSibling;
      const textarea = added && added.querySelector("textarea");
      if (textarea) textarea.focus();
    });
  }

  document.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (!target || !window.htmx) return;
    const cancel = target.closest(".comment-form-row .cancel-comment");
    if (cancel) {
      cancel.closest(".comment-form-row").remove();
      return;
    }
    const button = target.closest("table.diff-table[data-comment-url] th button");
    if (button) openForm(button);
  });
  document.addEventListener("htmx:load", (event) => enhance(event.target));
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => enhance(document));
  } else {
    enhance(document);
  }
})();
