/*
 * Hardened Shop: small progressive enhancement. Every page works without this file; with it:
 *  - write forms ([data-busy-form]) block a second submit while the first is in flight and say so;
 *  - checkout ([data-checkout-form]) is sent with fetch, so a dropped connection or a slow server gets a
 *    clear message and a retry that re-sends the SAME form (same idempotency key: it cannot order twice);
 *  - every wait is bounded: success, a clear error, or "still working, here is where to check";
 *  - the order page ([data-order-status]) follows the payment by polling with backoff, up to a bound.
 * The server is the real guarantee (idempotency key, cart version, order version); this is the courtesy.
 */
(function () {
  "use strict";

  var DEFAULT_BOUND_MS = 15000;

  function ordersUrl(form) {
    return (form && form.dataset.ordersUrl) || "/orders/";
  }

  function statusRegion(form) {
    var region = form.querySelector("[data-request-status]");
    if (!region) {
      region = document.createElement("div");
      region.className = "request-status";
      region.setAttribute("data-request-status", "");
      region.setAttribute("role", "status");
      region.setAttribute("aria-live", "polite");
      form.appendChild(region);
    }
    return region;
  }

  // Announce a message in the form's live region; errors use role=alert so screen readers interrupt.
  function say(form, html, kind) {
    var region = statusRegion(form);
    region.setAttribute("role", kind === "error" ? "alert" : "status");
    region.innerHTML = html;
    return region;
  }

  function submitButtons(form) {
    return Array.prototype.slice.call(form.querySelectorAll("button[type=submit], button:not([type])"));
  }

  function setBusy(form, busy) {
    form.dataset.inFlight = busy ? "true" : "false";
    form.setAttribute("aria-busy", busy ? "true" : "false");
    submitButtons(form).forEach(function (button) {
      if (busy) {
        if (!button.dataset.idleHtml) button.dataset.idleHtml = button.innerHTML;
        button.setAttribute("aria-disabled", "true");
        button.innerHTML =
          '<span class="spinner" aria-hidden="true" data-spinner></span> ' +
          (button.dataset.busyLabel || "Working…");
        // Disabled after the submit event has been dispatched, so the browser still sends this submission.
        window.setTimeout(function () { button.disabled = true; }, 0);
      } else {
        button.disabled = false;
        button.removeAttribute("aria-disabled");
        if (button.dataset.idleHtml) button.innerHTML = button.dataset.idleHtml;
      }
    });
    window.clearTimeout(Number(form.dataset.boundTimer || 0));
  }

  function escapeHtml(text) {
    var div = document.createElement("div");
    div.textContent = text;
    return div.innerHTML;
  }

  // --- Every write form: one submit at a time, and a bounded wait ------------------------------------------

  function enhanceBusyForm(form) {
    if (form.dataset.enhanced) return;
    form.dataset.enhanced = "true";
    form.addEventListener("submit", function (event) {
      // Double submit: a second click or Enter while the first request is in flight does nothing.
      if (form.dataset.inFlight === "true") {
        event.preventDefault();
        return;
      }
      if (form.dataset.checkoutEnhanced) return; // sent with fetch by the checkout enhancer below
      setBusy(form, true);
      var bound = Number(form.dataset.boundMs || DEFAULT_BOUND_MS);
      form.dataset.boundTimer = String(window.setTimeout(function () {
        say(form, "Still working… this is taking longer than usual. You can wait, or " +
          '<a href="' + window.location.href + '">reload this page</a> to see where things stand.');
      }, bound));
    });
  }

  // --- Checkout: fetch, so a dropped connection is an error with a safe retry, not a blank page -----------

  function swapMain(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var incoming = doc.querySelector("main#main");
    if (!incoming) return false;
    var main = document.querySelector("main#main");
    main.innerHTML = incoming.innerHTML;
    document.title = doc.title;
    enhance(main);
    focusFirstProblem(main);
    return true;
  }

  function sendCheckout(form, body) {
    var bound = Number(form.dataset.boundMs || 20000);
    var controller = new AbortController();
    var timedOut = false;
    setBusy(form, true);
    form.dataset.inFlight = "true";
    say(form, "");
    var timer = window.setTimeout(function () { timedOut = true; controller.abort(); }, bound);
    fetch(form.action, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch", Accept: "text/html" },
      signal: controller.signal,
    }).then(function (response) {
      window.clearTimeout(timer);
      var landed = new URL(response.url, window.location.href);
      if (response.redirected && landed.pathname !== new URL(form.action, window.location.href).pathname) {
        say(form, '<span class="spinner" aria-hidden="true"></span> Done. Opening your order…');
        window.location.assign(response.url);
        return;
      }
      // Busy (lock timeout, throttled) or down: offer the same-key retry rather than a page without the form.
      var transient = response.status >= 500 || response.status === 429 || response.headers.has("Retry-After");
      return response.text().then(function (html) {
        if (!transient && swapMain(html)) return;
        setBusy(form, false);
        showFailure(form, body, transient
          ? "The shop is busy right now (" + response.status + "). Wait a moment, then try again."
          : "The server answered with an error (" + response.status + "). Nothing was ordered twice.");
      });
    }).catch(function () {
      window.clearTimeout(timer);
      setBusy(form, false);
      if (timedOut) {
        showFailure(form, body,
          "Still working… we stopped waiting after " + Math.round(bound / 1000) + " seconds. " +
          "Your order may have gone through: check your orders before trying again.");
      } else {
        showFailure(form, body,
          "We could not reach the shop: the connection dropped. Check your connection, then try again.");
      }
    });
  }

  function showFailure(form, body, message) {
    var region = say(form,
      '<div class="alert alert--error" data-checkout-error><p><strong>' + escapeHtml(message) + "</strong></p>" +
      "<p>Trying again is safe: it re-sends the same order, so you will never be charged twice.</p>" +
      '<p class="actions"><button type="button" class="button" data-retry>Try again</button> ' +
      '<a class="button button--ghost" href="' + ordersUrl(form) + '">Check your orders</a></p></div>',
      "error");
    var retry = region.querySelector("[data-retry]");
    retry.addEventListener("click", function () { sendCheckout(form, body); });
    retry.focus();
  }

  function enhanceCheckoutForm(form) {
    if (form.dataset.checkoutEnhanced || !window.fetch || !window.AbortController) return;
    form.dataset.checkoutEnhanced = "true";
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (form.dataset.inFlight === "true") return;
      // The FormData is captured once: every retry re-sends the same idempotency key and cart version.
      sendCheckout(form, new FormData(form));
    });
  }

  // --- Live order status: poll with backoff, stop when settled or after the bound --------------------------

  var STATUS_TEXT = {
    paid: "Payment received. We will ship it soon.",
    fulfilled: "Shipped. It is on its way.",
    payment_failed: "The payment failed. Nothing was charged; you can place the order again.",
    cancelled: "Cancelled. Any payment is refunded.",
  };

  function followOrderStatus(panel) {
    if (panel.dataset.following || panel.dataset.settled === "true") return;
    panel.dataset.following = "true";
    var text = panel.querySelector("[data-status-text]");
    var badge = document.querySelector("[data-status-badge]");
    var bound = Number(panel.dataset.boundMs || 90000);
    var started = Date.now();
    var delay = 1000;

    function settle(data) {
      if (badge) {
        badge.textContent = data.status_display;
        badge.className = "status status--" + data.status;
      }
      text.textContent = STATUS_TEXT[data.status] || data.status_display;
      panel.dataset.settled = "true";
      document.querySelectorAll("[data-only-while-pending]").forEach(function (el) { el.hidden = true; });
    }

    function giveUp() {
      text.innerHTML = "Still waiting for the payment provider. We stopped checking automatically: " +
        '<a href="' + window.location.pathname + '">refresh this page</a> in a minute, or see ' +
        '<a href="/orders/">your orders</a>.';
    }

    function tick() {
      fetch(panel.dataset.statusUrl, {
        credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" },
      }).then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.json();
      }).then(function (data) {
        if (data.settled) { settle(data); return true; }
        return false;
      }).catch(function () {
        return false; // a failed poll is retried with the same backoff, within the same bound
      }).then(function (done) {
        if (done) return;
        if (Date.now() - started + delay > bound) { giveUp(); return; }
        window.setTimeout(tick, delay);
        delay = Math.min(delay * 1.6, 10000);
      });
    }
    window.setTimeout(tick, delay);
  }

  // --- Focus: after a refused submit, move focus to what needs attention ------------------------------------

  function focusFirstProblem(root) {
    var target = root.querySelector("[data-focus-on-load]") || root.querySelector("[aria-invalid=true]");
    if (target) target.focus();
  }

  function enhance(root) {
    root.querySelectorAll("form[data-busy-form]").forEach(enhanceBusyForm);
    root.querySelectorAll("form[data-checkout-form]").forEach(enhanceCheckoutForm);
    root.querySelectorAll("[data-order-status]").forEach(followOrderStatus);
  }

  // Back button (bfcache): a restored page must not stay "busy"; its form keeps its key, so resubmitting
  // lands on the same order.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-busy-form]").forEach(function (form) { setBusy(form, false); });
  });

  document.addEventListener("DOMContentLoaded", function () {
    enhance(document);
    focusFirstProblem(document);
  });
})();
