// Visitor Lookup: the few behaviours htmx does not cover. No inline scripts (CSP).
(function () {
  "use strict";

  function searchBox() { return document.getElementById("search-visitor"); }

  // "/" focuses the search box; Escape clears it.
  document.addEventListener("keydown", function (event) {
    var box = searchBox();
    if (!box) return;
    var tag = (event.target.tagName || "").toLowerCase();
    var typing = tag === "input" || tag === "textarea" || tag === "select" || event.target.isContentEditable;
    if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      box.focus();
      box.select();
    } else if (event.key === "Escape" && event.target === box) {
      box.value = "";
    }
  });

  // Copy buttons: data-copy holds the text, or data-copy-from names an element whose text to copy.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy], [data-copy-from]");
    if (!button) return;
    var text = button.hasAttribute("data-copy")
      ? button.getAttribute("data-copy")
      : (document.getElementById(button.getAttribute("data-copy-from")) || {}).textContent || "";
    if (button.getAttribute("data-copy-kind") === "link") text = new URL(text, window.location.href).href;
    var label = button.textContent;
    navigator.clipboard.writeText(text).then(function () {
      button.textContent = "Copied";
      button.setAttribute("data-copied", "true");
    }, function () {
      button.textContent = "Copy failed: select and copy by hand";
    }).finally(function () {
      window.setTimeout(function () { button.textContent = label; button.removeAttribute("data-copied"); }, 1600);
    });
  });

  // While a look-up waits on PostMetric, ask the server every half second whether it is
  // being retried, and say so in the loading indicator.
  var progressTimer = null;
  function stopProgress() {
    if (progressTimer) { window.clearTimeout(progressTimer); window.clearInterval(progressTimer); progressTimer = null; }
    var detail = document.getElementById("loading-detail");
    if (detail) detail.textContent = "";
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    var indicator = document.getElementById("loading");
    if (!indicator || !event.detail.target || event.detail.target.id !== "main") return;
    stopProgress();
    function poll() {
      fetch(indicator.getAttribute("data-progress-url"), { credentials: "same-origin", cache: "no-store" })
        .then(function (response) { return response.ok ? response.text() : ""; })
        .then(function (text) {
          var detail = document.getElementById("loading-detail");
          if (detail && progressTimer) detail.textContent = text;
        })
        .catch(function () { /* the indicator keeps its generic text */ });
    }
    // Quick look first (a retry starts within a second), then every half second.
    progressTimer = window.setTimeout(function () {
      poll();
      progressTimer = window.setInterval(poll, 500);
    }, 300);
  });
  document.addEventListener("htmx:afterRequest", stopProgress);

  // After the main area is replaced, move focus to its heading so keyboard and
  // screen-reader users land on the new content.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "main") {
      var heading = document.querySelector("#main h1");
      if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus({ preventScroll: false }); }
      var box = searchBox();
      var view = document.querySelector("#visitor-view[data-visitor-id]");
      if (box && view) box.value = view.getAttribute("data-visitor-id");
    }
  });
})();
