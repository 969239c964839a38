// The thread list: search, filters, sort and paging over POST /threads/search and /threads/count.

import { post } from "./api.js";
import { arrowKeys, badge, cost, fill, h, shortId, textOf, tokens, when } from "./dom.js";

const PAGE_SIZE = 50;
const SORTS = [
  ["last_run_at", "Last activity"],
  ["updated_at", "Last update"],
  ["created_at", "Created"],
  ["cost_usd", "Cost"],
  ["total_tokens", "Tokens"],
  ["run_count", "Runs"],
];
const SELECT = ["thread_id", "name", "status", "lifecycle", "tags", "usage", "run_count",
  "message_count", "last_run_at", "updated_at", "created_at", "visible"];

/** The filters of the search form, from the route's query. */
function filtersFrom(params) {
  const body = {};
  const text = params.get("q");
  if (text) body.text = text;
  for (const key of ["status", "lifecycle"]) if (params.get(key)) body[key] = params.get(key);
  const tags = (params.get("tags") || "").split(",").map((t) => t.trim()).filter(Boolean);
  if (tags.length) body.tags = tags;
  const metadata = {};
  for (const pair of (params.get("meta") || "").split(",")) {
    const at = pair.indexOf("=");
    if (at > 0) metadata[pair.slice(0, at).trim()] = parseValue(pair.slice(at + 1).trim());
  }
  if (Object.keys(metadata).length) body.metadata = metadata;
  if (params.get("hidden") === "1") body.visible = false;
  return body;
}

function parseValue(text) {
  // `user=ada` is a string; `count=3` and `ok=true` match JSON numbers and booleans.
  try {
    const value = JSON.parse(text);
    return typeof value === "object" && value !== null ? text : value;
  } catch {
    return text;
  }
}

export async function showThreads({ main, params, signal }) {
  main.dataset.view = "threads";
  const page = Math.max(0, Number.parseInt(params.get("page") || "0", 10) || 0);
  const sort = SORTS.some(([key]) => key === params.get("sort")) ? params.get("sort") : "last_run_at";
  const order = params.get("order") === "asc" ? "asc" : "desc";
  const filters = filtersFrom(params);
  const form = searchForm(params, sort, order);
  const list = h("ol", { class: "thread-list", "aria-label": "Threads" });
  const status = h("p", { class: "muted", role: "status" }, "Loading threads…");
  const pager = h("nav", { class: "pager", "aria-label": "Pages" });
  fill(main, h("h1", {}, "Threads"), form, status, list, pager);
  arrowKeys(list, "a.row");

  const [threads, total] = await Promise.all([
    post("/threads/search", {
      ...filters, limit: PAGE_SIZE, offset: page * PAGE_SIZE, sort_by: sort, sort_order: order,
      select: SELECT, extract: { first: "values.messages[0].content" },
    }, { signal }),
    post("/threads/count", filters, { signal }),
  ]);
  if (signal.aborted) return;
  if (!threads.length) {
    const filtered = Object.keys(filters).length > 0;
    fill(status, filtered
      ? "No thread matches these filters. Clear them to see every thread."
      : "No threads yet. Start one from an assistant (Assistants, above), or create one with "
        + "langgraph_sdk: client.threads.create().");
  } else {
    const first = page * PAGE_SIZE + 1;
    fill(status, `Threads ${first}–${first + threads.length - 1} of ${total.toLocaleString("en-US")}`);
  }
  list.append(...threads.map(row));
  pageLinks(pager, params, page, total);
  main.dataset.state = "ready";
}

function row(thread) {
  const extracted = thread.extracted || {};
  const first = textOf(extracted.first).trim();
  const title = thread.name || first || `Thread ${shortId(thread.thread_id)}`;
  const usage = thread.usage || {};
  return h("li", {},
    h("a", { class: "row", href: `#/threads/${encodeURIComponent(thread.thread_id)}` },
      h("span", { class: "title" },
        h("span", { class: "title-text" }, title.length > 140 ? `${title.slice(0, 140)}…` : title),
        thread.name && first ? h("span", { class: "subtitle muted" }, first.slice(0, 100)) : null,
        h("span", { class: "chips" },
          (thread.tags || []).map((tag) => h("span", { class: "chip" }, tag)),
          thread.visible === false ? h("span", { class: "chip" }, "hidden") : null)),
      h("span", { class: "cell" }, badge(thread.status)),
      h("span", { class: "cell" }, badge(thread.lifecycle)),
      h("span", { class: "cell num", title: "runs" }, `${thread.run_count ?? 0} runs`),
      h("span", { class: "cell num", title: "tokens" }, tokens(usage) ? `${tokens(usage)} tok` : ""),
      h("span", { class: "cell num", title: "cost" }, cost(usage)),
      h("span", { class: "cell muted" }, when(thread.last_run_at || thread.updated_at))));
}

function searchForm(params, sort, order) {
  const field = (label, input) => h("label", {}, label, input);
  const select = (name, options, value) => h("select", { name },
    options.map(([key, text]) => h("option", { value: key, selected: key === value }, text)));
  const form = h("form", { class: "filters", role: "search" },
    field("Search", h("input", { name: "q", type: "search", value: params.get("q") || "",
      placeholder: "name or first message", maxlength: 200 })),
    field("Status", select("status", [["", "any"], ["idle", "idle"], ["busy", "busy"],
      ["interrupted", "interrupted"], ["error", "error"]], params.get("status") || "")),
    field("Lifecycle", select("lifecycle", [["", "any"], ["open", "open"], ["locked", "locked"],
      ["archived", "archived"]], params.get("lifecycle") || "")),
    field("Tags", h("input", { name: "tags", value: params.get("tags") || "", placeholder: "a, b" })),
    field("Metadata", h("input", { name: "meta", value: params.get("meta") || "",
      placeholder: "user=ada" })),
    field("Sort by", select("sort", SORTS, sort)),
    field("Order", select("order", [["desc", "high / new first"], ["asc", "low / old first"]], order)),
    h("label", { class: "inline" },
      h("input", { type: "checkbox", name: "hidden", value: "1", checked: params.get("hidden") === "1" }),
      "Hidden threads only"),
    h("div", { class: "actions" },
      h("button", { class: "primary" }, "Search"),
      h("a", { href: "#/threads", class: "button quiet" }, "Clear")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) next.set(key, value);
    location.hash = `#/threads?${next}`;
  });
  // Changing a choice searches at once; typed fields wait for Enter.
  form.addEventListener("change", (event) => {
    if (event.target.tagName === "SELECT" || event.target.type === "checkbox") form.requestSubmit();
  });
  return form;
}

function pageLinks(pager, params, page, total) {
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const link = (target, text) => {
    const next = new URLSearchParams(params);
    next.set("page", String(target));
    return h("a", { class: "button", href: `#/threads?${next}` }, text);
  };
  fill(pager,
    page > 0 ? link(page - 1, "← Newer page") : null,
    h("span", { class: "muted" }, `Page ${page + 1} of ${pages}`),
    page + 1 < pages ? link(page + 1, "Next page →") : null);
}
