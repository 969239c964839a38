// The checkpoint tree drawn as SVG: one row per checkpoint (oldest at the top), one lane per
// branch; a checkpoint whose parent already has a child starts a new lane (a fork, an edit or
// a re-run from that point).

import { arrowKeys, checkpointTag, h, s } from "./dom.js";

const ROW = 24;
const LANE = 18;
const TOP = 14;

/** Lanes for the nodes (oldest first): `{lane: Map(id -> lane), lanes: count}`. */
export function layout(nodes) {
  const lane = new Map();
  const taken = new Set(); // parents whose own lane already continues
  let lanes = 0;
  for (const node of nodes) {
    const parent = node.parent_checkpoint_id;
    if (parent && lane.has(parent) && !taken.has(parent)) {
      lane.set(node.checkpoint_id, lane.get(parent));
      taken.add(parent);
    } else {
      lane.set(node.checkpoint_id, lanes++);
      if (parent) taken.add(parent);
    }
  }
  return { lane, lanes: Math.max(lanes, 1) };
}

function label(node) {
  const parts = [`step ${node.step ?? "?"}`, node.source || ""];
  if (node.next && node.next.length) parts.push(`→ ${node.next.join(", ")}`);
  return parts.filter(Boolean).join(" · ");
}

/** The tree as an `<svg>`; `onSelect(node, {compare})` runs on click, Enter or Space
 * (shift-click or Shift+Enter picks the checkpoint to compare with). */
export function drawTree(nodes, onSelect) {
  const { lane, lanes } = layout(nodes);
  const row = new Map(nodes.map((node, index) => [node.checkpoint_id, index]));
  const x = (id) => 10 + lane.get(id) * LANE;
  const y = (id) => TOP + row.get(id) * ROW;
  const textX = 10 + lanes * LANE + 6;
  const edges = s("g", { class: "edges" });
  const points = s("g", { class: "points" });
  for (const node of nodes) {
    const id = node.checkpoint_id;
    const parent = node.parent_checkpoint_id;
    if (parent && row.has(parent)) {
      const [x1, y1, x2, y2] = [x(parent), y(parent), x(id), y(id)];
      const d = x1 === x2
        ? `M${x1},${y1} L${x2},${y2}`
        : `M${x1},${y1} C${x1},${y1 + ROW * 0.8} ${x2},${y1 + ROW * 0.2} ${x2},${Math.min(y2, y1 + ROW)} L${x2},${y2}`;
      edges.append(s("path", { d, class: x1 === x2 ? "edge" : "edge branch" }));
    }
    const choose = (event) => onSelect(node, { compare: event.shiftKey });
    const point = s("g", {
      class: "node", tabindex: 0, role: "button",
      "data-id": id, "aria-label": `Checkpoint ${checkpointTag(id)}, ${label(node)}`,
      onclick: choose,
      onkeydown: (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          choose(event);
        }
      },
    },
    s("rect", { class: "hit", x: 0, y: y(id) - ROW / 2, width: textX + 360, height: ROW }),
    s("circle", { cx: x(id), cy: y(id), r: 5, class: `dot source-${safeSource(node.source)}` }),
    s("text", { x: textX, y: y(id) + 4 }, label(node)),
    s("text", { x: textX + 250, y: y(id) + 4, class: "muted" }, checkpointTag(id)));
    points.append(point);
  }
  const svg = s("svg", {
    class: "tree", width: textX + 330, height: TOP * 2 + nodes.length * ROW,
    role: "group", "aria-label": "Checkpoint tree",
  }, edges, points);
  arrowKeys(svg, "g.node");
  return svg;
}

function safeSource(source) {
  return ["input", "loop", "update", "fork"].includes(source) ? source : "other";
}

/** A plain list of the same checkpoints, for the compare picker. */
export function checkpointOptions(nodes, selected) {
  return nodes.map((node) => h("option", { value: node.checkpoint_id,
    selected: node.checkpoint_id === selected }, `${label(node)} · ${checkpointTag(node.checkpoint_id)}`));
}
