// Zendesk's ticket sidebar: read the ticket through the ZAF SDK, then load the card with
// htmx, authenticated by this page's short-lived token (never a cookie). No inline scripts (CSP).
(function () {
  "use strict";

  var root = document.getElementById("zendesk-sidebar");
  if (!root) return;
  var status = document.getElementById("card-status");
  function say(text) { status.textContent = text; }

  // For the card request and for any htmx request inside the card (inherited).
  root.setAttribute("hx-headers", JSON.stringify({ Authorization: "Bearer " + root.dataset.cardToken }));

  var client = window.ZAFClient && window.ZAFClient.init();
  if (!client) {
    say("This page works only inside Zendesk's ticket sidebar (open the ticket in Zendesk).");
    return;
  }

  function fitFrame() {
    client.invoke("resize", { width: "100%", height: document.body.scrollHeight + "px" }).catch(function () {});
  }
  document.body.addEventListener("htmx:afterSettle", function () { say(""); fitFrame(); });

  var field = root.dataset.fieldPath;
  client.get([field, "ticket.createdAt", "ticket.id"]).then(function (data) {
    var visitor = data[field], ticket = data["ticket.id"];
    var query = new URLSearchParams({
      visitorId: visitor == null ? "" : String(visitor),
      at: data["ticket.createdAt"] || "",
      ticket: ticket == null ? "" : String(ticket)
    });
    say("Looking up the visitor…");
    htmx.ajax("GET", root.dataset.cardUrl + "?" + query.toString(), { source: root, target: "#card", swap: "innerHTML" });
  }, function (error) {
    say("Zendesk did not give the ticket's fields (" + ((error && error.message) || "no answer") + "): reload the ticket.");
  });
})();
