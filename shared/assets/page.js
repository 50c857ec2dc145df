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

// What a problem document says, in one line.
window.brandmintExplain = (problem) => {
  const fields = (problem.errors || []).map((e) => e.field + ": " + e.message).join("; ");
  return problem.detail || fields || problem.title || "That did not work.";
};

// Every `<form data-api="/path">` is sent to that JSON route (method `data-method`, POST by
// default) with the CSRF header. Its named fields become the JSON body: `items.0.name` nests,
// `data-type` on a field converts it (number; bool for a checkbox; each for checkboxes sharing a
// name, collected into a list of the checked values; list for comma-separated text; utc for a
// datetime-local field read as UTC), empty fields are left out. A form with `data-upload` sends its file as the raw body.
// On success the page goes to `data-next` (`{id}` is replaced by the answer's id), or shows the
// answer's field `data-show` (a secret shown once) after `data-show-label`, or reloads; a
// refusal is shown in the form's status line (a 401 as `data-unauthorized` says, when set).
(() => {
  const convert = (field) => {
    switch (field.dataset.type) {
      case "number": return Number(field.value);
      case "bool": return field.checked;
      case "list": return field.value.split(",").map((v) => v.trim()).filter((v) => v);
      case "utc": return new Date(field.value + "Z").toISOString();
      default: return field.value;
    }
  };
  const put = (target, path, value) => {
    const keys = path.split(".");
    let node = target;
    keys.slice(0, -1).forEach((key, n) => {
      if (node[key] === undefined) node[key] = /^\d+$/.test(keys[n + 1]) ? [] : {};
      node = node[key];
    });
    node[keys[keys.length - 1]] = value;
  };
  const body = (form) => {
    const json = {};
    const lists = {};
    for (const field of form.elements) {
      if (!field.name || field.disabled) continue;
      if (field.dataset.type === "each") {
        lists[field.name] = lists[field.name] || [];
        if (field.checked) lists[field.name].push(field.value);
        continue;
      }
      if (field.type === "radio" && !field.checked) continue;
      if (field.type !== "checkbox" && field.value === "") continue;
      put(json, field.name, convert(field));
    }
    Object.entries(lists).forEach(([name, values]) => put(json, name, values));
    return json;
  };
  document.querySelectorAll("form[data-api]").forEach((form) => {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const status = form.querySelector(".status");
      const button = form.querySelector("button[type=submit]");
      const headers = { accept: "application/json", "x-csrf-token": window.brandmintCsrf() };
      let payload;
      if (form.dataset.upload !== undefined) {
        const file = form.querySelector("input[type=file]").files[0];
        if (!file) return window.brandmintSay(status, "Choose a file first.", "bad");
        payload = file;
        headers["content-type"] = file.type || "application/octet-stream";
      } else {
        payload = JSON.stringify(body(form));
        headers["content-type"] = "application/json";
      }
      if (button) button.disabled = true;
      window.brandmintSay(status, "Working…");
      try {
        const response = await fetch(form.dataset.api, { method: form.dataset.method || "POST", headers, body: payload });
        const answer = response.status === 204 ? {} : await response.json().catch(() => ({}));
        if (!response.ok) {
          const said = response.status === 401 && form.dataset.unauthorized;
          window.brandmintSay(status, said || window.brandmintExplain(answer), "bad");
          return;
        }
        const next = form.dataset.next;
        if (form.dataset.show) window.brandmintSay(status, `${form.dataset.showLabel}: ${answer[form.dataset.show]}`, "good");
        else if (next) window.location.assign(next.replace("{id}", answer.id));
        else window.location.reload();
      } catch (error) {
        window.brandmintSay(status, "The service could not be reached; nothing was changed. Try again.", "bad");
      } finally {
        if (button) button.disabled = false;
      }
    });
  });
})();
