// Calls to the server's public API, with the credentials the user pasted (if any), and SSE read
// from fetch (EventSource cannot send headers). Same origin only: the page's CSP allows no other.

const STORE_KEY = "agent-runtime.credentials";

/** `{kind: "x-api-key" | "bearer", value, remember}` or null. */
export function credentials() {
  const raw = sessionStorage.getItem(STORE_KEY) || localStorage.getItem(STORE_KEY);
  if (!raw) return null;
  try {
    const parsed = JSON.parse(raw);
    return parsed && typeof parsed.value === "string" && parsed.value ? parsed : null;
  } catch {
    return null;
  }
}

/** Keep credentials for this tab (sessionStorage) or, with `remember`, this browser. */
export function saveCredentials(kind, value, remember) {
  sessionStorage.removeItem(STORE_KEY);
  localStorage.removeItem(STORE_KEY);
  if (!value) return;
  const stored = JSON.stringify({ kind, value, remember });
  (remember ? localStorage : sessionStorage).setItem(STORE_KEY, stored);
}

function headers(extra = {}) {
  const result = { ...extra };
  const held = credentials();
  if (held && held.kind === "bearer") {
    result.Authorization = /^(bearer|basic) /i.test(held.value) ? held.value : `Bearer ${held.value}`;
  } else if (held) {
    result["x-api-key"] = held.value;
  }
  return result;
}

/** An error answer of the API: its status, `detail` sentence and `code`. */
export class ApiError extends Error {
  constructor(status, detail, code) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

async function failure(response) {
  let detail = `${response.status} ${response.statusText}`;
  let code = "http_error";
  try {
    const body = await response.json();
    if (body && typeof body.detail === "string") detail = body.detail;
    if (body && typeof body.code === "string") code = body.code;
  } catch {
    // Not our error body (a proxy's page): the status line says enough.
  }
  if (response.status === 401 || response.status === 403) {
    detail += " (set the API key or token with the Credentials button at the top right)";
  }
  return new ApiError(response.status, detail, code);
}

/** `{data, headers}` of one call; throws ApiError on a 4xx or 5xx. */
export async function call(method, path, body, options = {}) {
  const init = {
    method,
    headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }),
    credentials: "same-origin",
    signal: options.signal,
  };
  if (body !== undefined) init.body = JSON.stringify(body);
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "The server cannot be reached; is agent-runtime still running?", "offline");
  }
  if (!response.ok) throw await failure(response);
  const data = response.status === 204 ? null : await response.json();
  return { data, headers: response.headers };
}

export const get = async (path, options) => (await call("GET", path, undefined, options)).data;
export const post = async (path, body, options) => (await call("POST", path, body, options)).data;
export const patch = async (path, body) => (await call("PATCH", path, body)).data;

/** Server-sent events from `path`: yields `{event, data, id}` until the stream ends or
 * `signal` aborts it. */
export async function* events(path, { signal, onOpen } = {}) {
  let response;
  try {
    response = await fetch(path, {
      headers: headers({ Accept: "text/event-stream" }),
      credentials: "same-origin",
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") return;
    throw new ApiError(0, "The server cannot be reached; is agent-runtime still running?", "offline");
  }
  if (!response.ok) throw await failure(response);
  if (onOpen) onOpen();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    while (true) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (error) {
        if (error.name === "AbortError") return;
        throw error;
      }
      if (chunk.done) return;
      buffer += chunk.value.replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const parsed = parseFrame(frame);
        if (parsed) yield parsed;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

function parseFrame(frame) {
  let event = "message";
  let id = null;
  const data = [];
  for (const line of frame.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
    else if (field === "id") id = value;
  }
  if (!data.length) return null;
  const text = data.join("\n");
  try {
    return { event, id, data: JSON.parse(text) };
  } catch {
    return { event, id, data: text };
  }
}

export const enc = encodeURIComponent;
