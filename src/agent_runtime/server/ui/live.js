// Following a thread live: GET /threads/{id}/stream carries every run's events (tokens, node
// updates, the end of each run) and the thread's state changes, for as long as the view is open.

import { ApiError, events, post } from "./api.js";
import { fill, h, shortId, textOf } from "./dom.js";

const FINAL = ["success", "error", "timeout", "interrupted", null];

/** The live panel of a thread view; `onChange` is called when the thread's state moved. */
export class LivePanel {
  constructor(threadId, onChange) {
    this.threadId = threadId;
    this.onChange = onChange;
    this.runId = null;
    this.element = h("section", { class: "live", "aria-live": "polite", hidden: true });
    this.bubbles = new Map();
  }

  /** Follow the thread until `signal` aborts. */
  async follow(signal) {
    const path = `/threads/${encodeURIComponent(this.threadId)}/stream`
      + "?stream_mode=run_modes&stream_mode=state_update";
    try {
      // Read the thread again once the stream is open: the server takes its starting point
      // then, and a run that ended between the view's first read and now sends no event.
      const onOpen = () => this.onChange();
      for await (const event of events(path, { signal, onOpen })) this.handle(event);
    } catch (error) {
      if (signal.aborted || error.name === "AbortError") return;
      this.show();
      fill(this.element, h("p", { class: "error", role: "alert" },
        `Live updates stopped: ${error.message}. Reload the page to follow the thread again.`));
    }
  }

  handle({ event, data }) {
    if (event === "metadata" && data && data.run_id) {
      if ("status" in data && FINAL.includes(data.status)) this.ended(data);
      else if (data.run_id !== this.runId) this.started(data.run_id);
    } else if (event === "messages" && Array.isArray(data)) {
      this.token(data[0]);
    } else if (event === "messages/partial" && Array.isArray(data) && data.length) {
      this.token(data[data.length - 1], true);
    } else if (event === "updates" && data && typeof data === "object") {
      for (const [node, update] of Object.entries(data)) this.step(node, update);
    } else if (event === "error") {
      this.log(`error: ${data && data.message ? data.message : JSON.stringify(data)}`, "error");
    } else if (event === "values" && !this.runId) {
      this.onChange();
    }
  }

  started(runId) {
    this.runId = runId;
    this.bubbles = new Map();
    this.show();
    this.cancel = h("button", { type: "button", class: "danger", onclick: () => this.stop() },
      "Cancel run");
    this.steps = h("ol", { class: "steps", "aria-label": "Node updates" });
    this.tokens = h("div", { class: "live-tokens" });
    fill(this.element,
      h("div", { class: "live-head" },
        h("span", { class: "pulse", "aria-hidden": "true" }),
        h("strong", {}, `Run ${shortId(runId)} is running`), this.cancel),
      this.tokens, this.steps);
  }

  token(chunk, whole = false) {
    if (!chunk || !this.runId) return;
    const text = textOf(chunk.content);
    if (!text) return;
    const key = chunk.id || "reply";
    let bubble = this.bubbles.get(key);
    if (!bubble) {
      bubble = h("div", { class: "message message-assistant streaming" });
      this.bubbles.set(key, bubble);
      this.tokens.append(bubble);
    }
    if (whole) bubble.textContent = text;
    else bubble.append(text);
  }

  step(node, update) {
    const keys = update && typeof update === "object" ? Object.keys(update) : [];
    this.log(keys.length ? `${node} updated ${keys.join(", ")}` : `${node} ran`);
  }

  log(text, kind = "") {
    if (!this.steps) return;
    this.steps.append(h("li", { class: kind }, text));
  }

  async stop() {
    if (!this.runId) return;
    this.cancel.disabled = true;
    this.cancel.textContent = "Cancelling…";
    try {
      await post(`/threads/${encodeURIComponent(this.threadId)}/runs/`
        + `${encodeURIComponent(this.runId)}/cancel?action=interrupt`);
    } catch (error) {
      // The run may have ended on its own between the click and the request.
      if (!(error instanceof ApiError && error.code === "run_not_active")) {
        this.log(`cancel failed: ${error.message}`, "error");
      }
    }
  }

  ended(data) {
    const status = data.status === null ? "rolled back" : data.status;
    this.runId = null;
    this.show();
    fill(this.element, h("p", { class: "muted", dataset: { ended: status } },
      `Run ${shortId(data.run_id)} ended: ${status}.`));
    this.onChange();
  }

  show() {
    this.element.hidden = false;
  }
}
