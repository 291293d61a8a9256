/*
 * ANTI-PATTERN on purpose (workshop twin of frontend state); the fix lives in static/js/shop.js (enhanceBusyForm).
 * Saves the order edit form without a page reload, with a spinner while it waits. Never loaded by the real shop.
 */
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("edit-order");
  if (!form) return;

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    var spinner = document.getElementById("spinner");
    var message = document.getElementById("message");
    button.disabled = true;
    spinner.hidden = false;
    message.textContent = "";

    fetch(form.action || window.location.href, { method: "POST", body: new FormData(form) })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        spinner.hidden = true;
        button.disabled = false;
        message.textContent = data.message;
      });
  });
});
