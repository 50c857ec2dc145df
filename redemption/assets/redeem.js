// The page a printed QR code opens (`/r/{code}`): claim the reward with the wallet in the browser
// (signed in with SIWE by wallet.js) or, where the brand allows it, to a typed address; then
// follow the claim until it is paid. Talks only to this service's JSON routes.
"use strict";

(() => {
  const root = document.getElementById("redeem");
  if (!root) return;
  const code = root.dataset.code;
  const status = document.getElementById("status");
  const say = (text, kind) => window.brandmintSay(status, text, kind);
  const busy = (on) => root.querySelectorAll("button").forEach((b) => { b.disabled = on; });

  async function json(path, options) {
    const response = await fetch(path, Object.assign({ headers: { accept: "application/json" } }, options));
    const body = await response.json().catch(() => ({}));
    return { ok: response.ok, status: response.status, body };
  }

  // Shows where the claim is; asks again every second until it is paid or has failed.
  async function follow() {
    const { ok, body } = await json(`/r/${code}`);
    const claim = ok && body.claims && body.claims[0];
    if (!claim) return;
    if (claim.state === "completed") {
      document.getElementById("claim")?.remove();
      say("Paid. Transaction " + (claim.tx_hash || "recorded") + ".", "good");
      return;
    }
    if (claim.state === "failed" || claim.state === "refused") {
      say("The payout did not go through; the code can be claimed again.", "bad");
      busy(false);
      return;
    }
    say(claim.state === "awaiting_kyc"
      ? "Waiting for your identity check (KYC); it is paid once approved."
      : "Claimed. Sending the reward to " + claim.recipient + "…");
    setTimeout(follow, 1000);
  }

  async function claim(body, token) {
    busy(true);
    say("Claiming…");
    const headers = { "content-type": "application/json", accept: "application/json" };
    if (token) headers.authorization = "Bearer " + token;
    const { ok, body: answer } = await json(`/r/${code}/claims`, { method: "POST", headers, body: JSON.stringify(body) });
    if (!ok) {
      const field = answer.errors && answer.errors[0];
      say(field ? field.message : answer.detail || "Something went wrong; please try again.", "bad");
      busy(false);
      return;
    }
    if (answer.code) {
      document.getElementById("claim")?.remove();
      say("Your code: " + answer.code + " (shown once: write it down).", "good");
      return;
    }
    follow();
  }

  document.getElementById("connect")?.addEventListener("click", async () => {
    busy(true);
    try {
      const session = await window.brandmintSignIn();
      await claim({}, session.access_token);
    } catch (e) {
      say("Signing in did not work: " + (e.message || e), "bad");
      busy(false);
    }
  });

  document.getElementById("typed")?.addEventListener("submit", (event) => {
    event.preventDefault();
    claim({ address: document.getElementById("address").value.trim() });
  });

  if (root.dataset.following === "true") follow();
})();
