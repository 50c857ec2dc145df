// The back office's pages. Forms are sent by /assets/page.js; this script follows what changes
// on its own: an element with `data-follow="/json/route"`, `data-field="deployment.state"` and
// `data-while="requested submitted"` polls the route every two seconds while that field is one
// of those values, and reloads the page when it leaves them (a deployment being mined, a QR
// batch being generated).
"use strict";

(() => {
  document.querySelectorAll("[data-follow]").forEach((element) => {
    const waiting = (element.dataset.while || "").split(" ");
    const status = element.querySelector(".status");
    const poll = async () => {
      try {
        const response = await fetch(element.dataset.follow, { headers: { accept: "application/json" } });
        const now = await response.json();
        const value = element.dataset.field.split(".").reduce((node, key) => (node ? node[key] : undefined), now);
        if (!waiting.includes(value)) {
          window.location.reload();
          return;
        }
        if (now.generated !== undefined) window.brandmintSay(status, `Generated ${now.generated} of ${now.size} codes…`);
      } catch (error) {
        window.brandmintSay(status, "Lost touch with the service; retrying…", "bad");
      }
      setTimeout(poll, 2000);
    };
    setTimeout(poll, 2000);
  });
})();
