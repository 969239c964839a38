// A graph from /assistants/{id}/graph drawn as SVG with a layered layout: each node's layer is
// its longest distance from __start__ over forward edges (edges that close a loop are drawn
// curving to the side), nodes in a layer ordered by the mean position of their parents.

import { s } from "./dom.js";

const BOX_H = 34;
const GAP_X = 28;
const GAP_Y = 56;
const CHAR = 7.4;

/** Layer and order of every node: `{layers: [[id...]...], back: Set("a->b")}`. */
export function layers(nodes, edges) {
  const ids = nodes.map((node) => node.id);
  const out = new Map(ids.map((id) => [id, []]));
  for (const edge of edges) if (out.has(edge.source) && out.has(edge.target)) out.get(edge.source).push(edge.target);
  // Depth-first from the start: an edge to a node still on the stack closes a loop.
  const back = new Set();
  const state = new Map();
  const visit = (id) => {
    state.set(id, "open");
    for (const next of out.get(id)) {
      if (state.get(next) === "open") back.add(`${id}->${next}`);
      else if (!state.has(next)) visit(next);
    }
    state.set(id, "done");
  };
  const roots = ids.includes("__start__") ? ["__start__", ...ids] : ids;
  for (const id of roots) if (!state.has(id)) visit(id);
  const depth = new Map(ids.map((id) => [id, 0]));
  // Longest path over the forward edges (a DAG): relax in rounds, at most one per node.
  for (let round = 0; round < ids.length; round++) {
    let moved = false;
    for (const edge of edges) {
      if (back.has(`${edge.source}->${edge.target}`) || !depth.has(edge.source) || !depth.has(edge.target)) continue;
      if (depth.get(edge.target) < depth.get(edge.source) + 1) {
        depth.set(edge.target, depth.get(edge.source) + 1);
        moved = true;
      }
    }
    if (!moved) break;
  }
  // The end goes last, below every node, even those reaching it only through a loop.
  if (depth.has("__end__")) depth.set("__end__", Math.max(...depth.values()));
  const rows = [];
  for (const id of ids) (rows[depth.get(id)] ||= []).push(id);
  const placed = rows.filter(Boolean);
  const position = new Map();
  placed.forEach((row, index) => {
    if (index > 0) {
      const mean = (id) => {
        const parents = edges.filter((e) => e.target === id && position.has(e.source));
        return parents.length ? parents.reduce((sum, e) => sum + position.get(e.source), 0) / parents.length : 0;
      };
      row.sort((a, b) => mean(a) - mean(b));
    }
    row.forEach((id, i) => position.set(id, i));
  });
  return { layers: placed, back };
}

/** The graph as an `<svg>`. */
export function drawGraph(graph) {
  const nodes = graph.nodes || [];
  const edges = graph.edges || [];
  const { layers: rows, back } = layers(nodes, edges);
  const width = (id) => Math.max(70, id.length * CHAR + 24);
  const rowWidth = (row) => row.reduce((sum, id) => sum + width(id), 0) + GAP_X * (row.length - 1);
  const total = Math.max(...rows.map(rowWidth), 120) + 80;
  const box = new Map();
  rows.forEach((row, index) => {
    let x = (total - rowWidth(row)) / 2;
    for (const id of row) {
      box.set(id, { x, y: 20 + index * (BOX_H + GAP_Y), w: width(id) });
      x += width(id) + GAP_X;
    }
  });
  const height = 40 + rows.length * (BOX_H + GAP_Y) - GAP_Y;
  const drawn = s("g");
  const right = Math.max(...[...box.values()].map((b) => b.x + b.w));
  for (const edge of edges) {
    const a = box.get(edge.source);
    const b = box.get(edge.target);
    if (!a || !b) continue;
    const loop = back.has(`${edge.source}->${edge.target}`) || a.y >= b.y;
    let d;
    if (loop) {
      // Loops go around the right of every box, so they never cross one.
      const side = right + 30;
      d = `M${a.x + a.w},${a.y + BOX_H / 2} C${side},${a.y + BOX_H / 2} ${side},${b.y + BOX_H / 2} ${b.x + b.w},${b.y + BOX_H / 2}`;
    } else {
      const [x1, y1, x2, y2] = [a.x + a.w / 2, a.y + BOX_H, b.x + b.w / 2, b.y];
      d = `M${x1},${y1} C${x1},${(y1 + y2) / 2} ${x2},${(y1 + y2) / 2} ${x2},${y2 - 4}`;
    }
    drawn.append(s("path", { d, class: edge.conditional ? "gedge conditional" : "gedge",
      "marker-end": "url(#arrow)" }));
    if (edge.data && typeof edge.data === "string" && edge.data !== edge.target) {
      const [lx, ly] = loop ? [right + 34, (a.y + b.y) / 2 + BOX_H / 2]
        : [(a.x + a.w / 2 + b.x + b.w / 2) / 2 + 4, (a.y + BOX_H + b.y) / 2];
      drawn.append(s("text", { x: lx, y: ly, class: "glabel" }, edge.data));
    }
  }
  for (const node of nodes) {
    const b = box.get(node.id);
    const special = node.id === "__start__" || node.id === "__end__";
    drawn.append(s("g", { class: special ? "gnode special" : "gnode" },
      s("rect", { x: b.x, y: b.y, width: b.w, height: BOX_H, rx: special ? 17 : 6 }),
      s("text", { x: b.x + b.w / 2, y: b.y + BOX_H / 2 + 4, "text-anchor": "middle" },
        node.id === "__start__" ? "start" : node.id === "__end__" ? "end" : node.id)));
  }
  const defs = s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
  s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" })));
  const svg = s("svg", { class: "graph", viewBox: `0 0 ${total + 60} ${height}`,
    width: total + 60, height, role: "img", "aria-label": `Graph with ${nodes.length} nodes` },
  defs, drawn);
  return svg;
}
