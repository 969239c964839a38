// A thread's conversation: messages, each tool call with its result and duration (from the
// tool-call log), and the interrupts waiting for an answer. Text only, never markup.

import { duration, h, json, textOf } from "./dom.js";

const ROLES = { human: "user", user: "user", ai: "assistant", assistant: "assistant",
  tool: "tool", system: "system" };

/** The conversation as a list of message elements. */
export function renderConversation(messages, toolLog) {
  const byCall = new Map(toolLog.map((call) => [call.id, call]));
  const results = new Map();
  for (const message of messages) {
    if (message.type === "tool" && message.tool_call_id) results.set(message.tool_call_id, message);
  }
  const shown = new Set();
  const items = [];
  for (const message of messages) {
    if (message.type === "tool" && shown.has(message.tool_call_id)) continue;
    const calls = message.tool_calls || [];
    for (const call of calls) if (results.has(call.id)) shown.add(call.id);
    items.push(messageItem(message, calls.map((call) => toolCall(call, results.get(call.id),
      byCall.get(call.id)))));
  }
  return items;
}

function messageItem(message, calls) {
  const role = ROLES[message.type] || "other";
  const text = textOf(message.content);
  const usage = message.usage_metadata;
  return h("li", { class: `message message-${role}`, dataset: { id: message.id || "" } },
    h("div", { class: "message-head" },
      h("span", { class: "role" }, message.name ? `${role} · ${message.name}` : role),
      usage && usage.total_tokens ? h("span", { class: "muted" }, `${usage.total_tokens} tokens`) : null),
    text ? h("div", { class: "message-text" }, text) : null,
    calls.length ? h("div", { class: "tool-calls" }, calls) : null);
}

function toolCall(call, result, logged) {
  const status = logged ? logged.status : result ? (result.status || "success") : "no result yet";
  const took = logged && logged.duration_ms !== null ? duration(logged.duration_ms) : "";
  const output = result ? textOf(result.content) : logged ? logged.result ?? logged.error : null;
  return h("details", { class: "tool-call", open: true },
    h("summary", {},
      h("span", { class: "tool-name" }, call.name),
      h("span", { class: `muted tool-status tool-${status === "error" ? "error" : "ok"}` },
        [status, took].filter(Boolean).join(" · "))),
    h("div", { class: "tool-body" },
      h("div", { class: "label" }, "Arguments"),
      h("pre", {}, json(call.args)),
      output !== null && output !== undefined
        ? [h("div", { class: "label" }, status === "error" ? "Error" : "Result"),
          h("pre", {}, typeof output === "string" ? output : json(output))]
        : null));
}

/** Interrupts of a thread (`thread.interrupts`: task id -> list) as one flat list. */
export function pendingInterrupts(thread) {
  return Object.values(thread.interrupts || {}).flat();
}

/** A reasonable first answer for an interrupt, for the resume box. */
export function suggestedResume(interrupt) {
  const value = interrupt && interrupt.value;
  if (value && Array.isArray(value.action_requests)) return { decisions: [{ type: "approve" }] };
  return "";
}
