// The staff scanner page (`/staff/scanner?brand_id&store_id`): sign in (page session), then scan
// a customer's counter code with the camera (where the browser has BarcodeDetector), a photo, or
// its text; the answer is shown big. Every call carries the session's CSRF token.
"use strict";

(() => {
  const root = document.getElementById("scanner");
  if (!root) return;
  const { brand, store, signedIn } = root.dataset;
  const result = document.getElementById("result");
  const show = (text, kind) => window.brandmintSay(result, text, kind);
  const post = (path, body, type) => fetch(path, {
    method: "POST",
    headers: { "content-type": type, accept: "application/json", "x-csrf-token": window.brandmintCsrf() },
    body,
  });

  async function answer(response) {
    const body = await response.json().catch(() => ({}));
    if (response.ok) show(body.message, "good");
    else show((body.errors && body.errors[0] ? body.errors[0].message : body.detail) || "The scan failed.", "bad");
  }

  async function open() {
    document.getElementById("signin").hidden = true;
    const response = await fetch(`/brands/${brand}/stores/${store}/scanner`, { headers: { accept: "application/json" } });
    if (response.status === 401) {
      document.getElementById("signin").hidden = false;
      return;
    }
    if (!response.ok) {
      show(response.status === 403 ? "You cannot scan at this store." : "This store cannot be found.", "bad");
      return;
    }
    const scanner = await response.json();
    document.getElementById("store").textContent = `${scanner.store_name} · ${scanner.brand_name}`;
    document.getElementById("scan").hidden = false;
    if ("BarcodeDetector" in window && navigator.mediaDevices) document.getElementById("camera").hidden = false;
  }

  document.getElementById("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const response = await post("/auth/staff-session", JSON.stringify({
      email: document.getElementById("email").value,
      password: document.getElementById("password").value,
    }), "application/json");
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      show(body.detail || "Signing in did not work.", "bad");
      return;
    }
    show("");
    open();
  });

  document.getElementById("photo").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    show("Reading the photo…");
    await answer(await post(`/brands/${brand}/stores/${store}/scans/photo`, file, file.type || "image/jpeg"));
    event.target.value = "";
  });

  document.getElementById("text-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const code = document.getElementById("code").value.trim();
    await answer(await post(`/brands/${brand}/stores/${store}/scans`, JSON.stringify({ code }), "application/json"));
  });

  document.getElementById("camera").addEventListener("click", async () => {
    const video = document.getElementById("video");
    const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    const look = async () => {
      const [found] = await detector.detect(video).catch(() => []);
      if (!found) return requestAnimationFrame(look);
      stream.getTracks().forEach((t) => t.stop());
      video.hidden = true;
      await answer(await post(`/brands/${brand}/stores/${store}/scans`, JSON.stringify({ code: found.rawValue }),
        "application/json"));
    };
    look();
  });

  if (signedIn === "true") open();
  else document.getElementById("signin").hidden = false;
})();
