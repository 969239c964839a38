// Time travel over one thread: the checkpoint tree; a checkpoint's state and its diff to its
// parent or any other checkpoint; fork by editing state, re-run, resume an interrupt from it.

import { enc, get, post } from "./api.js";
import { checkpointTag, fill, h, json, shortId, textOf, when } from "./dom.js";
import { checkpointOptions, drawTree } from "./tree.js";
import { startRun } from "./thread.js";

export async function showTimeTravel({ main, params, signal }, threadId) {
  main.dataset.view = "tree";
  const base = `/threads/${enc(threadId)}`;
  const [thread, all] = await Promise.all([get(base, { signal }), get(`${base}/tree`, { signal })]);
  if (signal.aborted) return;
  const nodes = all.filter((node) => node.checkpoint_ns === "");
  const view = { base, thread, nodes, selected: null, compare: null,
    panel: h("section", { class: "checkpoint", "aria-live": "polite" }) };
  const treeBox = h("div", { class: "tree-box" });
  fill(main,
    h("header", { class: "thread-head" },
      h("div", {}, h("h1", {}, `Time travel · ${thread.name || `thread ${shortId(threadId)}`}`),
        h("p", { class: "muted" }, `${nodes.length} checkpoints. Select one to see its state and `
          + "what changed; shift-click (or Shift+Enter) another to compare with it.")),
      h("nav", { class: "head-links" },
        h("a", { class: "button", href: `#/threads/${enc(threadId)}` }, "Back to the thread"))),
    h("div", { class: "travel-layout" }, treeBox, view.panel));
  if (!nodes.length) {
    fill(treeBox, h("p", { class: "empty" }, "This thread has no checkpoints yet: run it first."));
    main.dataset.state = "ready";
    return;
  }
  fill(treeBox, drawTree(nodes, (node, { compare }) => {
    if (compare && view.selected) select(view, view.selected, node.checkpoint_id);
    else select(view, node, null);
  }));
  const wanted = params.get("checkpoint");
  const initial = nodes.find((node) => node.checkpoint_id === wanted) || nodes[nodes.length - 1];
  await select(view, initial, null);
  main.dataset.state = "ready";
}

async function select(view, node, compareId) {
  view.selected = node;
  view.compare = compareId;
  for (const el of document.querySelectorAll("g.node")) {
    el.classList.toggle("selected", el.dataset.id === node.checkpoint_id);
    el.classList.toggle("compared", el.dataset.id === compareId);
  }
  const id = node.checkpoint_id;
  const diffQuery = new URLSearchParams({ to: id });
  if (compareId) diffQuery.set("from", compareId);
  const [state, diff] = await Promise.all([
    get(`${view.base}/state/${enc(id)}`),
    get(`${view.base}/history/diff?${diffQuery}`),
  ]);
  if (view.selected !== node) return; // another click came first
  drawPanel(view, node, state, diff);
}

function drawPanel(view, node, state, diff) {
  const picker = h("select", { "aria-label": "Compare with" },
    h("option", { value: "" }, "its parent"), checkpointOptions(view.nodes, view.compare));
  picker.addEventListener("change", () => select(view, node, picker.value || null));
  const interrupts = (state.tasks || []).flatMap((task) => task.interrupts || []);
  fill(view.panel,
    h("h2", {}, `Checkpoint ${checkpointTag(node.checkpoint_id)}`),
    h("p", { class: "muted ids" }, [`step ${node.step}`, node.source, when(node.created_at),
      node.run_id ? `run ${shortId(node.run_id)}` : "",
      state.next && state.next.length ? `next: ${state.next.join(", ")}` : "next: nothing (final)"]
      .filter(Boolean).join(" · ")),
    h("section", { class: "diff" },
      h("h3", {}, "Changes"),
      h("label", { class: "inline" }, "Compared with ", picker),
      drawDiff(diff)),
    h("details", { class: "state" }, h("summary", {}, "State at this checkpoint"),
      h("pre", {}, json(state.values))),
    forkForm(view, node, state),
    actions(view, node, interrupts));
}

/** The diff as lists of channels and messages added, removed and changed. */
export function drawDiff(diff) {
  const items = [];
  const channel = (kind, name, value) => h("li", { class: `diff-${kind}` },
    h("span", { class: "diff-mark" }, { added: "+", removed: "−", changed: "~" }[kind]),
    h("strong", {}, name), h("pre", {}, typeof value === "string" ? value : json(value)));
  const messageText = (message) => `${message.type || message.role || "message"}: `
    + `${textOf(message.content) || json(message.tool_calls || message)}`;
  for (const [name, lists] of Object.entries(diff.messages || {})) {
    for (const m of lists.added) items.push(channel("added", name, messageText(m)));
    for (const m of lists.removed) items.push(channel("removed", name, messageText(m)));
    for (const m of lists.changed) {
      items.push(channel("changed", name, `${messageText(m.from)}\n→ ${messageText(m.to)}`));
    }
  }
  for (const [name, value] of Object.entries(diff.added || {})) {
    if (!(name in (diff.messages || {}))) items.push(channel("added", name, value));
  }
  for (const [name, value] of Object.entries(diff.removed || {})) items.push(channel("removed", name, value));
  for (const [name, change] of Object.entries(diff.changed || {})) {
    if (!(name in (diff.messages || {}))) {
      items.push(channel("changed", name, `${json(change.from)}\n→ ${json(change.to)}`));
    }
  }
  if (!items.length) return h("p", { class: "muted" }, "No differences in the state's values.");
  return h("ul", { class: "diff-list" }, items);
}

function forkForm(view, node, state) {
  const values = h("textarea", { name: "values", rows: 10, "aria-label": "State values (JSON)" },
    json(state.values));
  const asNode = h("input", { name: "as_node", placeholder: "as node (optional)" });
  const problem = h("p", { class: "error", role: "alert", hidden: true });
  const form = h("form", { class: "fork" },
    h("p", { class: "muted" }, "Edit the values and fork: a new checkpoint on a new branch, "
      + "this one unchanged. Messages with the same id replace the old ones."),
    values, h("label", {}, "Write as node", asNode), problem,
    h("div", { class: "actions" }, h("button", { class: "primary" }, "Fork from here")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.hidden = true;
    let parsed;
    try {
      parsed = JSON.parse(values.value);
    } catch {
      problem.hidden = false;
      problem.textContent = "The values are not valid JSON; fix them and fork again.";
      return;
    }
    const body = { values: parsed, checkpoint_id: node.checkpoint_id };
    if (asNode.value.trim()) body.as_node = asNode.value.trim();
    try {
      const written = await post(`${view.base}/state`, body);
      const id = written.checkpoint ? written.checkpoint.checkpoint_id : "";
      location.hash = `#/threads/${enc(view.thread.thread_id)}/tree?checkpoint=${enc(id)}`;
    } catch (error) {
      problem.hidden = false;
      problem.textContent = error.message;
    }
  });
  return h("details", { class: "fork-box" }, h("summary", {}, "Fork by editing the state"), form);
}

function actions(view, node, interrupts) {
  const problem = h("p", { class: "error", role: "alert", hidden: true });
  const assistant = (view.thread.metadata || {}).assistant_id || (view.thread.metadata || {}).graph_id;
  const run = async (body) => {
    problem.hidden = true;
    try {
      await startRun(view.base, { assistant_id: assistant, checkpoint_id: node.checkpoint_id, ...body });
      location.hash = `#/threads/${enc(view.thread.thread_id)}`;
    } catch (error) {
      problem.hidden = false;
      problem.textContent = error.message;
    }
  };
  const answer = h("textarea", { rows: 3, "aria-label": "Resume value (JSON)" },
    interrupts.length && interrupts[0].value && interrupts[0].value.action_requests
      ? json({ decisions: [{ type: "approve" }] }) : "");
  return h("section", { class: "actions-box" },
    h("h3", {}, "Run from here"),
    h("div", { class: "actions" },
      h("button", { type: "button", disabled: !assistant, onclick: () => run({ input: null }) },
        "Re-run from this checkpoint")),
    interrupts.length ? [
      h("p", {}, "This checkpoint waits for an answer:"),
      interrupts.map((item) => h("pre", {}, json(item.value))),
      answer,
      h("button", { type: "button", class: "primary", onclick: () => {
        let value;
        try { value = JSON.parse(answer.value); } catch { value = answer.value; }
        run({ command: { resume: value } });
      } }, "Resume with this value"),
    ] : null,
    assistant ? null : h("p", { class: "muted" }, "This thread names no assistant, so it cannot run."),
    problem);
}
