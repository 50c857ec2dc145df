// The customer's "show at the counter" page (`/counter`, signed in by wallet.js): keeps the QR
// code fresh, fetching a new one before the shown one runs out.
"use strict";

(() => {
  const status = document.getElementById("status");
  const say = (text, kind) => window.brandmintSay(status, text, kind);

  const qr = document.getElementById("qr");
  if (!qr) return;
  const { reward, token, refresh } = qr.dataset;
  const expires = document.getElementById("expires");
  async function renew() {
    const response = await fetch(`/customers/me/counter-codes?reward_id=${reward}&token_id=${token}`, {
      headers: { accept: "application/json" },
    }).catch(() => null);
    const code = response && response.ok ? await response.json() : null;
    if (!code) {
      say("The code could not be refreshed; trying again…", "bad");
      setTimeout(renew, 5000);
      return;
    }
    qr.src = "data:image/svg+xml;base64," + btoa(code.svg);
    expires.textContent = "Valid until " + new Date(code.expires_at).toLocaleTimeString();
    say("");
    setTimeout(renew, code.refresh_after_secs * 1000);
  }
  setTimeout(renew, Number(refresh) * 1000);
})();
