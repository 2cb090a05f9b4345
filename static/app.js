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

  // A view found by asking every site names that site in the address bar. htmx swaps get
  // it from HX-Push-Url; a page opened directly says it here (the server asked no redirect,
  // so the look-up is not made twice).
  function nameTheSite() {
    var view = document.querySelector("#visitor-view[data-canonical-url]");
    var url = view && view.getAttribute("data-canonical-url");
    if (url && url !== window.location.pathname + window.location.search) {
      window.history.replaceState(window.history.state, "", url);
    }
  }
  nameTheSite();

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
