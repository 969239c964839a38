// Assistants: the list, and one assistant's graph, schemas and versions, with a form that
// starts a thread with it.

import { enc, get, post } from "./api.js";
import { arrowKeys, fill, h, json, shortId, when } from "./dom.js";
import { drawGraph } from "./graph.js";
import { startRun } from "./thread.js";

export async function showAssistants({ main, signal }) {
  main.dataset.view = "assistants";
  const assistants = await post("/assistants/search",
    { limit: 1000, sort_by: "name", sort_order: "asc" }, { signal });
  if (signal.aborted) return;
  const list = h("ol", { class: "thread-list", "aria-label": "Assistants" },
    assistants.map((assistant) => h("li", {},
      h("a", { class: "row", href: `#/assistants/${enc(assistant.assistant_id)}` },
        h("span", { class: "title" }, h("span", { class: "title-text" }, assistant.name),
          h("span", { class: "subtitle muted" }, assistant.description || `graph ${assistant.graph_id}`)),
        h("span", { class: "cell muted" }, `version ${assistant.version}`),
        h("span", { class: "cell muted" }, shortId(assistant.assistant_id)),
        h("span", { class: "cell muted" }, when(assistant.updated_at))))));
  arrowKeys(list, "a.row");
  fill(main, h("h1", {}, "Assistants"),
    assistants.length ? list : h("p", { class: "empty" },
      "No assistants. Register a graph under \"graphs\" in langgraph.json and restart the server."));
  main.dataset.state = "ready";
}

export async function showAssistant({ main, signal }, assistantId) {
  main.dataset.view = "assistant";
  const base = `/assistants/${enc(assistantId)}`;
  const [assistant, graph, schemas, versions] = await Promise.all([
    get(base, { signal }),
    get(`${base}/graph`, { signal }),
    get(`${base}/schemas`, { signal }),
    post(`${base}/versions`, { limit: 20 }, { signal }),
  ]);
  if (signal.aborted) return;
  const schema = (title, value) => value
    ? h("details", {}, h("summary", {}, title), h("pre", {}, json(value))) : null;
  fill(main,
    h("header", { class: "thread-head" },
      h("div", {}, h("h1", {}, assistant.name),
        h("p", { class: "muted ids" }, `${assistant.assistant_id} · graph ${assistant.graph_id}`
          + ` · version ${assistant.version}`)),
      h("nav", { class: "head-links" }, h("a", { class: "button quiet", href: "#/assistants" }, "All assistants"))),
    h("div", { class: "thread-layout" },
      h("div", { class: "thread-main" },
        h("h2", {}, "Graph"), h("div", { class: "graph-box" }, drawGraph(graph)),
        h("h2", {}, "Start a thread"), starter(assistant)),
      h("aside", { class: "thread-side" },
        h("h2", {}, "Schemas"),
        schema("Input", schemas.input_schema), schema("Output", schemas.output_schema),
        schema("State", schemas.state_schema), schema("Config", schemas.config_schema),
        schema("Context", schemas.context_schema),
        h("h2", {}, "Versions"),
        h("ol", { class: "run-list" }, versions.map((version) => h("li", {},
          h("strong", {}, `version ${version.version}`), " ",
          h("span", { class: "muted" }, when(version.created_at)),
          h("details", {}, h("summary", {}, "config, context, metadata"),
            h("pre", {}, json({ config: version.config, context: version.context,
              metadata: version.metadata })))))))));
  main.dataset.state = "ready";
}

function starter(assistant) {
  const text = h("textarea", { rows: 3, required: true, "aria-label": "First message",
    placeholder: "The first message of a new thread" });
  const problem = h("p", { class: "error", role: "alert", hidden: true });
  const form = h("form", { class: "composer" }, text, problem,
    h("div", { class: "actions" }, h("button", { class: "primary" }, "Start the thread")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.hidden = true;
    try {
      const thread = await post("/threads", { metadata: { assistant_id: assistant.assistant_id,
        graph_id: assistant.graph_id } });
      const base = `/threads/${enc(thread.thread_id)}`;
      await startRun(base, { assistant_id: assistant.assistant_id,
        input: { messages: [{ role: "user", content: text.value }] } });
      location.hash = `#${base}`;
    } catch (error) {
      problem.hidden = false;
      problem.textContent = error.message;
    }
  });
  return form;
}
