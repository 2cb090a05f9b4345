// Visitor Lookup: the few behaviours htmx does not cover. No inline scripts (CSP), no eval.
(function () {
  "use strict";

  function byId(id) { return document.getElementById(id); }
  function searchBox() { return byId("search-visitor"); }

  // Screen readers hear what an in-place update did (an HX-Trigger "announce" event).
  function announce(text) {
    var region = byId("announcer");
    if (!region) return;
    region.textContent = "";
    window.setTimeout(function () { region.textContent = text; }, 50);
  }
  document.body.addEventListener("announce", function (event) { announce(event.detail.value); });

  // The login form tells the server the browser's time zone (used until the agent picks one).
  var zoneField = byId("browser-timezone");
  if (zoneField && !zoneField.value && window.Intl) {
    zoneField.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  }

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

  // Copy buttons: data-copy holds the text, or data-copy-from names an element whose text
  // to copy; data-copy-kind="link" makes the text an absolute URL.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy], [data-copy-from]");
    if (!button) return;
    var text = button.hasAttribute("data-copy")
      ? button.getAttribute("data-copy")
      : (byId(button.getAttribute("data-copy-from")) || {}).textContent || "";
    if (button.getAttribute("data-copy-kind") === "link") text = new URL(text, window.location.href).href;
    var label = button.textContent;
    navigator.clipboard.writeText(text).then(function () {
      button.textContent = "Copied";
      button.setAttribute("data-copied", "true");
      announce("Copied to the clipboard.");
    }, function () {
      button.textContent = "Copy failed: select and copy by hand";
    }).finally(function () {
      window.setTimeout(function () { button.textContent = label; button.removeAttribute("data-copied"); }, 1600);
    });
  });

  // A destructive admin action asks first (forms marked data-confirm; without JavaScript
  // the server's own checks still apply).
  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // Logging out also forgets the pages htmx keeps for back and forward (htmx 2 keeps
  // them in sessionStorage): they hold customer data that must not outlive the session.
  document.addEventListener("submit", function (event) {
    if (!event.target.hasAttribute("data-logout")) return;
    try { window.sessionStorage.removeItem("htmx-history-cache"); } catch (error) { /* storage disabled: nothing was kept */ }
  });

  // htmx polls (hx-trigger "every ..."); its filters would need eval, so the conditions
  // live here: the progress poll in the loading indicator runs only while the indicator
  // shows (and clears its text otherwise), and the live timeline asks nothing while the
  // tab is hidden (its visibilitychange trigger catches up when the tab comes back).
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt.id === "loading-detail" && !byId("loading").classList.contains("htmx-request")) {
      event.preventDefault();
      elt.textContent = "";
    } else if (elt.id === "timeline" && document.hidden) {
      event.preventDefault();
      var status = byId("live-status");
      if (status) status.textContent = "paused while this tab is hidden";
    }
  });

  // Back and forward restore a snapshot of the markup, not what was typed or chosen:
  // set the filters from the restored URL, which holds the view's whole state.
  document.addEventListener("htmx:historyRestore", function () {
    var params = new URLSearchParams(window.location.search);
    var fields = { "filter-q": params.get("q") || "", "filter-session": params.get("session") || "", "filter-order": params.get("order") || "desc" };
    Object.keys(fields).forEach(function (id) { var field = byId(id); if (field) field.value = fields[id]; });
    syncView();
  });

  // A page opened directly may have a better address than the one it was opened with
  // (the site that knew the visitor, or the view without refresh=1). htmx swaps get it
  // from HX-Push-Url / HX-Replace-Url; such a page says it here (no redirect, so the
  // look-up is not made twice).
  function nameTheSite() {
    var view = document.querySelector("#visitor-view[data-canonical-url]");
    var url = view && view.getAttribute("data-canonical-url");
    if (url && url !== window.location.pathname + window.location.search) {
      window.history.replaceState(window.history.state, "", url);
    }
  }
  nameTheSite();

  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    var id = target && target.id;
    if (id === "main") {
      // A new view: keyboard and screen-reader users land on its heading; when a page
      // that painted first fills in, only if the agent has not gone elsewhere meanwhile.
      var heading = document.querySelector("#main h1");
      var filled = event.detail.requestConfig && event.detail.requestConfig.elt.id === "visitor-loading";
      var away = document.activeElement && document.activeElement !== document.body && !byId("main").contains(document.activeElement);
      if (heading && !(filled && away)) { heading.setAttribute("tabindex", "-1"); heading.focus({ preventScroll: filled }); }
      var box = searchBox();
      var view = document.querySelector("#visitor-view[data-visitor-id]");
      if (box && view) box.value = view.getAttribute("data-visitor-id");
    } else if (id === "timeline" || id === "visitor-detail") {
      // Say what the filter did; a live refresh speaks only when it brought new views.
      var counts = byId("timeline-counts");
      var tick = event.detail.requestConfig && event.detail.requestConfig.elt.id === "timeline";
      if (counts && (!tick || document.querySelector("#timeline .tag.new"))) announce(counts.textContent.replace(/\s+/g, " ").trim());
    } else if (id === "more-sessions") {
      // "Show more sessions" is gone: go on at the first session it brought.
      var next = byId(target.getAttribute("data-focus-next") || "");
      if (next) next.focus();
    } else if (id === "load-more") {
      // Pressed "Load more": go on reading at the first new row (not when scrolling loaded it).
      var trigger = event.detail.requestConfig && event.detail.requestConfig.triggeringEvent;
      var rows = document.querySelectorAll("#timeline-rows tr[id^=chunk-]");
      if (trigger && trigger.type === "click" && rows.length) rows[rows.length - 1].focus();
    }
  });

  // The tab's title follows the view on screen: the timeline names it after each swap
  // (a filter swaps only the timeline), else whatever the main area holds.
  function syncTitle() {
    var source = byId("timeline") || document.querySelector("#main [data-title]");
    var title = source && source.getAttribute("data-title");
    if (title && document.title !== title) document.title = title;
  }

  // A page that painted first and cannot reach the server for its view says so.
  document.addEventListener("htmx:sendError", function (event) {
    var elt = event.detail.elt;
    if (elt.id !== "visitor-loading") return;
    elt.removeAttribute("aria-busy");
    elt.textContent = "The dashboard could not be reached. Reload the page to try again.";
  });

  // The session list follows the session filter (the filter swaps only the timeline).
  function syncView() {
    syncTitle();
    var timeline = byId("timeline");
    var current = timeline ? timeline.getAttribute("data-session") || "" : null;
    document.querySelectorAll(".session-list a[data-session-id]").forEach(function (link) {
      if (link.getAttribute("data-session-id") === current) link.setAttribute("aria-current", "true");
      else link.removeAttribute("aria-current");
    });
  }
  document.addEventListener("htmx:afterSettle", syncView);
})();
