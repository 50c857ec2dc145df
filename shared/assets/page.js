// What every page's script may use (loaded first on every page).
"use strict";

// The page session's CSRF token, to echo in `x-csrf-token` on state-changing requests.
window.brandmintCsrf = () => (document.cookie.split("; ").find((c) => c.startsWith("bm_csrf=")) || "").slice(8);

// Shows `text` in a status element (`kind`: info, good or bad).
window.brandmintSay = (element, text, kind) => {
  if (!element) return;
  element.textContent = text;
  element.dataset.kind = kind || "info";
};
