// Sign-In with Ethereum from a page, with the wallet in the browser (EIP-1193 `window.ethereum`):
// the service writes the message for the wallet's address, the wallet signs it, the service
// checks it. `cookie: true` also starts the page session (HttpOnly cookies). Used by the pages
// of this service; resolves to the sign-in answer (with `access_token`), or throws in words.
// Loaded with `defer`, after the page is parsed.
"use strict";

window.brandmintSignIn = async function signIn(options) {
  if (!window.ethereum) throw new Error("there is no wallet in this browser: open this page in your wallet app");
  const [address] = await window.ethereum.request({ method: "eth_requestAccounts" });
  const nonce = await fetch(`/auth/siwe/nonce?address=${encodeURIComponent(address)}`, {
    headers: { accept: "application/json" },
  });
  const prepared = await nonce.json().catch(() => ({}));
  if (!nonce.ok) throw new Error(prepared.detail || "the sign-in message could not be prepared");
  const message = prepared.message;
  const hex = "0x" + Array.from(new TextEncoder().encode(message), (b) => b.toString(16).padStart(2, "0")).join("");
  const signature = await window.ethereum.request({ method: "personal_sign", params: [hex, address] });
  const answer = await fetch("/auth/siwe", {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ message, signature, cookie: Boolean(options && options.cookie) }),
  });
  const session = await answer.json().catch(() => ({}));
  if (!answer.ok) throw new Error(session.detail || "the sign-in was refused");
  return session;
};

// A page's "Sign in with your wallet" button (`data-sign-in="page"`): starts the page session,
// then shows the page again, signed in. Trouble is told in the page's `#status`.
document.querySelectorAll("button[data-sign-in=page]").forEach((button) => {
  button.addEventListener("click", async () => {
    const status = document.getElementById("status");
    button.disabled = true;
    window.brandmintSay(status, "Signing in…");
    try {
      await window.brandmintSignIn({ cookie: true });
      window.location.reload();
    } catch (e) {
      window.brandmintSay(status, "Signing in did not work: " + (e.message || e), "bad");
      button.disabled = false;
    }
  });
});
