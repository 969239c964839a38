// One thread: its conversation, interrupts, runs, metadata (editable) and live runs.

import { call, enc, get, patch, post } from "./api.js";
import { badge, between, cost, duration, fill, h, json, shortId, tokens, when } from "./dom.js";
import { pendingInterrupts, renderConversation, suggestedResume } from "./conversation.js";
import { LivePanel } from "./live.js";

const MESSAGE_PAGE = 200;
export const RUN_STREAM_MODES = ["messages-tuple", "updates"];

export async function showThread({ main, signal }, threadId) {
  main.dataset.view = "thread";
  const base = `/threads/${enc(threadId)}`;
  const view = {
    base, threadId, signal, thread: null,
    conversation: h("ol", { class: "conversation", "aria-label": "Conversation" }),
    interrupts: h("section", { class: "interrupts", hidden: true }),
    runs: h("section", { class: "runs" }),
    details: h("section", { class: "details" }),
    head: h("header", { class: "thread-head" }),
    more: h("div", {}),
  };
  view.live = new LivePanel(threadId, () => refresh(view));
  view.composer = composer(view);
  fill(main, view.head,
    h("div", { class: "thread-layout" },
      h("div", { class: "thread-main" },
        h("h2", {}, "Conversation"), view.conversation, view.more, view.live.element,
        view.interrupts, view.composer),
      h("aside", { class: "thread-side" }, view.runs, view.details)));
  await refresh(view);
  if (signal.aborted) return;
  main.dataset.state = "ready";
  view.live.follow(signal);
}

async function refresh(view) {
  const { base, signal } = view;
  const [thread, messages, toolLog, runs] = await Promise.all([
    get(base, { signal }),
    call("GET", `${base}/messages?limit=${MESSAGE_PAGE}`, undefined, { signal }),
    get(`${base}/tool-calls?limit=1000`, { signal }),
    get(`${base}/runs?limit=50`, { signal }),
  ]);
  if (signal.aborted) return;
  view.thread = thread;
  drawHead(view);
  const shown = messages.data;
  fill(view.conversation, shown.length
    ? renderConversation(shown, toolLog)
    : h("li", { class: "empty" }, "No messages yet. Write one below to start a run."));
  fill(view.more);
  const next = messages.headers.get("X-Pagination-Next");
  if (next) view.more.append(moreButton(view, toolLog, Number(next)));
  drawInterrupts(view);
  drawRuns(view, runs);
  drawDetails(view);
  const open = thread.lifecycle === "open";
  for (const control of view.composer.elements) control.disabled = !open;
}

function moreButton(view, toolLog, offset) {
  const button = h("button", { type: "button" }, "Show more messages");
  button.addEventListener("click", async () => {
    const page = await call("GET", `${view.base}/messages?limit=${MESSAGE_PAGE}&offset=${offset}`);
    view.conversation.append(...renderConversation(page.data, toolLog));
    const next = page.headers.get("X-Pagination-Next");
    fill(view.more, next ? moreButton(view, toolLog, Number(next)) : null);
  });
  return button;
}

function drawHead(view) {
  const { thread } = view;
  fill(view.head,
    h("div", {},
      h("h1", {}, thread.name || `Thread ${shortId(thread.thread_id)}`),
      h("p", { class: "muted ids" }, thread.thread_id)),
    h("div", { class: "head-badges" }, badge(thread.status), badge(thread.lifecycle),
      h("span", { class: "muted" }, [tokens(thread.usage) && `${tokens(thread.usage)} tokens`,
        cost(thread.usage), `${thread.run_count ?? 0} runs`].filter(Boolean).join(" · "))),
    h("nav", { class: "head-links", "aria-label": "Thread" },
      h("a", { class: "button", href: `#/threads/${enc(thread.thread_id)}/tree` }, "Time travel"),
      h("a", { class: "button quiet", href: "#/threads" }, "All threads")));
}

function assistantOf(thread) {
  const metadata = thread.metadata || {};
  return metadata.assistant_id || metadata.graph_id || null;
}

/** Start a background run on the thread; the live panel follows it. */
export async function startRun(base, body) {
  return post(`${base}/runs`, { stream_mode: RUN_STREAM_MODES, multitask_strategy: "enqueue", ...body });
}

function drawInterrupts(view) {
  const interrupts = pendingInterrupts(view.thread);
  view.interrupts.hidden = interrupts.length === 0;
  if (!interrupts.length) return fill(view.interrupts);
  const answer = h("textarea", { name: "resume", rows: 4, "aria-label": "Resume value (JSON)" },
    json(suggestedResume(interrupts[0])));
  const problem = h("p", { class: "error", role: "alert", hidden: true });
  const form = h("form", { class: "resume" },
    h("label", {}, "Resume with this value (JSON)", answer), problem,
    h("div", { class: "actions" }, h("button", { class: "primary" }, "Resume")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.hidden = true;
    let value;
    try {
      value = JSON.parse(answer.value);
    } catch {
      value = answer.value; // plain text is a string value
    }
    try {
      form.querySelector("button").disabled = true;
      await startRun(view.base, { assistant_id: assistantOf(view.thread), command: { resume: value } });
    } catch (error) {
      problem.hidden = false;
      problem.textContent = error.message;
      form.querySelector("button").disabled = false;
    }
  });
  fill(view.interrupts,
    h("h2", {}, "Waiting for an answer"),
    interrupts.map((item) => h("div", { class: "interrupt" },
      h("pre", {}, json(item.value)))),
    form);
}

function drawRuns(view, runs) {
  const rows = runs.map((run) => {
    const ended = !["pending", "running"].includes(run.status);
    return h("li", { class: "run" },
      h("div", { class: "run-head" }, badge(run.status),
        h("span", { class: "muted" }, when(run.created_at))),
      h("div", { class: "muted" }, [`run ${shortId(run.run_id)}`,
        ended ? duration(between(run.created_at, run.updated_at)) : "",
        tokens(run.usage) && `${tokens(run.usage)} tokens`, cost(run.usage),
        run.attempt > 1 ? `attempt ${run.attempt}` : ""].filter(Boolean).join(" · ")),
      run.error ? h("pre", { class: "error" }, run.error) : null);
  });
  fill(view.runs, h("h2", {}, "Runs"),
    rows.length ? h("ol", { class: "run-list" }, rows) : h("p", { class: "muted" }, "No runs yet."));
}

function drawDetails(view) {
  const { thread } = view;
  const input = (name, value, attrs = {}) => h("input", { name, value: value ?? "", ...attrs });
  const lifecycle = h("select", { name: "lifecycle" },
    ["open", "locked", "archived"].map((value) =>
      h("option", { value, selected: thread.lifecycle === value }, value)));
  const problem = h("p", { class: "error", role: "alert", hidden: true });
  const saved = h("span", { class: "muted", role: "status" });
  const form = h("form", { class: "edit" },
    h("label", {}, "Name", input("name", thread.name, { maxlength: 200 })),
    h("label", {}, "Tags (comma-separated)", input("tags", (thread.tags || []).join(", "))),
    h("label", {}, "Lifecycle", lifecycle),
    h("label", {}, "Metadata (JSON, merged into the current metadata)",
      h("textarea", { name: "metadata", rows: 6 }, json(thread.metadata || {}))),
    problem,
    h("div", { class: "actions" }, h("button", { class: "primary" }, "Save"), saved));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.hidden = true;
    saved.textContent = "";
    const fields = form.elements;
    const body = {
      name: fields.name.value,
      tags: fields.tags.value.split(",").map((t) => t.trim()).filter(Boolean),
    };
    if (fields.lifecycle.value !== thread.lifecycle) body.lifecycle = fields.lifecycle.value;
    try {
      body.metadata = JSON.parse(fields.metadata.value || "{}");
    } catch {
      problem.hidden = false;
      problem.textContent = "Metadata is not valid JSON; write an object such as {\"user\": \"ada\"}.";
      return;
    }
    try {
      await patch(view.base, body);
      await refresh(view);
    } catch (error) {
      problem.hidden = false;
      problem.textContent = error.message;
    }
  });
  fill(view.details, h("h2", {}, "Details"),
    h("p", { class: "muted" }, `Created ${when(thread.created_at)} · updated ${when(thread.updated_at)}`),
    form);
}

function composer(view) {
  const text = h("textarea", { name: "message", rows: 2, required: true,
    placeholder: "Write a message; Ctrl+Enter sends it", "aria-label": "Message" });
  const problem = h("p", { class: "error", role: "alert", hidden: true });
  const form = h("form", { class: "composer" }, text, problem,
    h("div", { class: "actions" }, h("button", { class: "primary" }, "Send")));
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.hidden = true;
    const assistant = assistantOf(view.thread);
    if (!assistant) {
      problem.hidden = false;
      problem.textContent = "This thread has never run; start it from an assistant's page "
        + "(Assistants, above), which names its graph.";
      return;
    }
    try {
      await startRun(view.base, { assistant_id: assistant,
        input: { messages: [{ role: "user", content: text.value }] } });
      text.value = "";
    } catch (error) {
      problem.hidden = false;
      problem.textContent = error.message;
    }
  });
  return form;
}
