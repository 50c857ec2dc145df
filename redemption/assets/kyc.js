// The customer's KYC page (`/kyc`, signed in by wallet.js): saves the details, uploads each
// document picture, submits; every step goes to this service's JSON routes with the session's
// CSRF token, then the page is shown again from the server.
"use strict";

(() => {
  const status = document.getElementById("status");
  const say = (text, kind) => window.brandmintSay(status, text, kind);
  async function send(method, path, body, type) {
    say("Saving…");
    const headers = { accept: "application/json", "x-csrf-token": window.brandmintCsrf() };
    if (type) headers["content-type"] = type;
    const response = await fetch(path, { method, headers, body });
    if (response.ok) {
      window.location.reload();
      return;
    }
    const answer = await response.json().catch(() => ({}));
    const fields = (answer.errors || []).map((e) => e.field + ": " + e.message).join("; ");
    say(fields || answer.detail || "That did not work; please try again.", "bad");
  }

  document.getElementById("details")?.addEventListener("submit", (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    send("PUT", "/customers/me/kyc", JSON.stringify(Object.fromEntries(form.entries())), "application/json");
  });
  document.querySelectorAll("input[data-document]").forEach((input) => {
    input.addEventListener("change", () => {
      const file = input.files[0];
      if (file) send("PUT", `/customers/me/kyc/documents/${input.dataset.document}`, file, file.type);
    });
  });
  document.getElementById("submit-kyc")?.addEventListener("click", () => send("POST", "/customers/me/kyc/submit"));
})();
