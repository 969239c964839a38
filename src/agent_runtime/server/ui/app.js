// The inspector's shell: a hash router over the views, and the credentials dialog.

import { credentials, saveCredentials } from "./api.js";
import { fill, h } from "./dom.js";
import { showThreads } from "./threads.js";
import { showThread } from "./thread.js";
import { showTimeTravel } from "./timetravel.js";
import { showAssistants, showAssistant } from "./assistants.js";

const main = document.getElementById("main");
let leaving = null;

/** What each view gets: where to draw, the route's parts and a signal for leaving. */
function route() {
  const hash = location.hash.replace(/^#/, "") || "/threads";
  const [path, query = ""] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query);
  if (leaving) leaving.abort();
  leaving = new AbortController();
  const context = { main, params, signal: leaving.signal };
  for (const link of document.querySelectorAll("[data-nav]")) {
    const current = link.dataset.nav === (parts[0] || "threads");
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  main.dataset.state = "loading";
  main.dataset.view = "";
  // Which route the state belongs to: tests and benchmarks wait for this route's "ready".
  main.dataset.route = location.hash;
  let shown;
  if (parts[0] === "threads" && parts[1] && parts[2] === "tree") {
    shown = showTimeTravel(context, parts[1]);
  } else if (parts[0] === "threads" && parts[1]) {
    shown = showThread(context, parts[1]);
  } else if (parts[0] === "assistants" && parts[1]) {
    shown = showAssistant(context, parts[1]);
  } else if (parts[0] === "assistants") {
    shown = showAssistants(context);
  } else {
    shown = showThreads(context);
  }
  Promise.resolve(shown).catch((error) => showError(error, context.signal));
}

/** An error state that says what happened and what to do. */
export function showError(error, signal) {
  if (signal && signal.aborted) return;
  if (error && error.name === "AbortError") return;
  main.dataset.state = "error";
  const detail = error && error.message ? error.message : String(error);
  fill(
    main,
    h("section", { class: "empty", role: "alert" },
      h("h1", {}, error && error.status === 404 ? "Not found" : "Something went wrong"),
      h("p", {}, detail),
      h("p", {}, h("a", { href: "#/threads" }, "Back to the threads"))),
  );
}

function setUpCredentials() {
  const dialog = document.getElementById("credentials-dialog");
  const form = document.getElementById("credentials-form");
  const button = document.getElementById("credentials-button");
  const label = () => {
    button.textContent = credentials() ? "Credentials ✓" : "Credentials";
  };
  button.addEventListener("click", () => {
    const held = credentials();
    form.elements.kind.value = held ? held.kind : "x-api-key";
    form.elements.value.value = held ? held.value : "";
    form.elements.remember.checked = Boolean(held && held.remember);
    dialog.showModal();
  });
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "save") {
      saveCredentials(form.elements.kind.value, form.elements.value.value.trim(),
        form.elements.remember.checked);
    } else if (dialog.returnValue === "clear") {
      saveCredentials("x-api-key", "", false);
    } else {
      return;
    }
    label();
    route();
  });
  label();
}

setUpCredentials();
window.addEventListener("hashchange", route);
route();
