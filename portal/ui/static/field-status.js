/* Live field checks of the create form: htmx swaps a field's status (its error or a note)
 * into the field's live region; this keeps the control's accessible state in step, the way
 * the server draws it after a submission: aria-invalid, and the error as its description.
 * No inline handlers, no eval: works under a strict Content-Security-Policy. */
document.addEventListener("htmx:afterSwap", (event) => {
  const status = event.detail.target;
  if (!(status instanceof HTMLElement) || !status.dataset.statusOf) return;
  const control = document.getElementById(status.dataset.statusOf);
  if (!control) return;
  const error = status.querySelector(".field-error");
  const errorId = `${status.dataset.statusOf}-error`;
  const described = (control.getAttribute("aria-describedby") || "")
    .split(/\s+/)
    .filter((id) => id && id !== errorId);
  if (error) {
    control.setAttribute("aria-invalid", "true");
    described.push(errorId);
  } else {
    control.removeAttribute("aria-invalid");
  }
  if (described.length) control.setAttribute("aria-describedby", described.join(" "));
  else control.removeAttribute("aria-describedby");
  const field = status.closest(".field");
  if (field) field.classList.toggle("has-error", Boolean(error));
});
