// The shop's pages. A campaign's page (`/shop/{slug}`): each item's form places the order
// (`POST /orders`), then card buyers go to the hosted payment page and wallet buyers to their
// order's page. An order's page (`/orders/{id}`): pays a wallet order's quote from the browser's
// wallet (EIP-1193), and follows the order live (Server-Sent Events) until its token is minted.
"use strict";

(() => {
  const say = window.brandmintSay;

  document.querySelectorAll("form.buy").forEach((form) => {
    const status = form.querySelector(".status");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      say(status, "Placing your order…");
      const response = await fetch("/orders", {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json", "idempotency-key": crypto.randomUUID() },
        body: JSON.stringify({
          item_id: Number(form.dataset.item),
          quantity: Number(data.get("quantity")),
          email: data.get("email"),
          wallet_address: data.get("wallet_address"),
          method: data.get("method"),
        }),
      });
      const order = await response.json().catch(() => ({}));
      if (!response.ok) {
        const fields = (order.errors || []).map((e) => e.field + ": " + e.message).join("; ");
        say(status, fields || order.detail || "The order could not be placed.", "bad");
        button.disabled = false;
        return;
      }
      if (order.method === "card") {
        const hosted = await fetch(`/orders/${order.id}/checkout-session`, { method: "POST", headers: { accept: "application/json" } });
        const page = await hosted.json().catch(() => ({}));
        if (hosted.ok) window.location.assign(page.url);
        else say(status, page.detail || "The payment page could not be opened.", "bad");
        return;
      }
      window.location.assign(`/orders/${order.id}`);
    });
  });

  const order = document.getElementById("order");
  if (!order) return;
  const state = document.getElementById("state");
  const status = document.getElementById("pay-status");
  const words = {
    pending: "Waiting for your payment.",
    paid: "Paid; minting your token…",
    fulfilled: "Done: your token is minted.",
    expired: "This order expired before it was paid; nothing was charged.",
    failed: "This order failed; nothing was charged.",
    refunded: "This order was refunded.",
  };
  const events = new EventSource(`/orders/${order.dataset.id}/events`);
  events.addEventListener("order", (event) => {
    const now = JSON.parse(event.data);
    say(state, words[now.state] || now.state, now.state === "fulfilled" ? "good" : "info");
    if (now.first_token_id) {
      const token = document.getElementById("token");
      token.hidden = false;
      token.querySelector("a").textContent = `token #${now.first_token_id}`;
      if (now.metadata_url) token.querySelector("a").href = now.metadata_url;
      document.getElementById("pay-card")?.remove();
    }
    if (["fulfilled", "expired", "failed", "refunded"].includes(now.state)) events.close();
  });

  document.getElementById("pay")?.addEventListener("click", async (event) => {
    if (!window.ethereum) {
      say(status, "There is no wallet in this browser: open this page in your wallet app.", "bad");
      return;
    }
    event.target.disabled = true;
    try {
      const [from] = await window.ethereum.request({ method: "eth_requestAccounts" });
      for (const tx of JSON.parse(order.dataset.transactions)) {
        say(status, `Confirm in your wallet: ${tx.purpose}…`);
        await window.ethereum.request({ method: "eth_sendTransaction", params: [{ from, to: tx.to, data: tx.data, value: tx.value }] });
      }
      say(status, "Sent. Waiting for the chain…");
    } catch (e) {
      say(status, "The payment was not sent: " + (e.message || e), "bad");
      event.target.disabled = false;
    }
  });
})();
