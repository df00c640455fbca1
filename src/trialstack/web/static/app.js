/* TrialStack web: small progressive enhancements on top of htmx. Every page works without this file. */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Every htmx request carries the CSRF token as a header, as forms carry it as a field.
  document.addEventListener("htmx:configRequest", function (event) {
    var token = csrfToken();
    if (token) { event.detail.headers["X-CSRF-Token"] = token; }
  });

  // A changed saved value asks for a reason for change (the server enforces it; this only shows the box early).
  function trackChanges(root) {
    root.querySelectorAll("[data-saved]").forEach(function (row) {
      var saved = row.getAttribute("data-saved");
      var update = function () {
        var current = "";
        var checked = row.querySelector("input[type=radio]:checked");
        var control = row.querySelector("input[data-value], select[data-value], textarea[data-value]");
        if (checked) { current = checked.value; } else if (control) { current = control.value; }
        var notDone = row.querySelector("input[data-not-done]");
        var changed = saved !== "" && (current !== saved || (notDone && notDone.value.trim() !== ""));
        row.classList.toggle("changed", changed);
        var reason = row.querySelector("[data-reason]");
        if (reason) { reason.required = changed; }
      };
      row.addEventListener("input", update);
      row.addEventListener("change", update);
      update();
    });
  }

  // Dialogs: a button with data-open-dialog="id" opens it; focus goes to its first field.
  function wireDialogs(root) {
    root.querySelectorAll("[data-open-dialog]").forEach(function (button) {
      button.addEventListener("click", function () {
        var dialog = document.getElementById(button.getAttribute("data-open-dialog"));
        if (dialog && dialog.showModal) {
          dialog.showModal();
          var first = dialog.querySelector("input:not([type=hidden]), textarea, select");
          if (first) { first.focus(); }
        }
      });
    });
    root.querySelectorAll("[data-close-dialog]").forEach(function (button) {
      button.addEventListener("click", function () {
        var dialog = button.closest("dialog");
        if (dialog) { dialog.close(); }
      });
    });
  }

  function focusOutcome(root) {
    var target = root.querySelector("[data-focus-first]");
    if (target) { target.setAttribute("tabindex", "-1"); target.focus(); }
  }

  function enhance(root) {
    trackChanges(root);
    wireDialogs(root);
  }

  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  document.addEventListener("htmx:afterSwap", function (event) {
    enhance(event.detail.target);
    focusOutcome(event.detail.target);
  });
})();
