// The only way the UI talks to the server: /api/v1 with a bearer token kept
// in sessionStorage (never in a URL, gone when the tab closes).
const KEY = "loupe.token";

export const session = {
  get token() { return sessionStorage.getItem(KEY); },
  set token(t) { t ? sessionStorage.setItem(KEY, t) : sessionStorage.removeItem(KEY); },
  me: null,
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(f) { onUnauthorized = f; }

async function errorOf(res) {
  let code = "http_" + res.status, message = res.statusText || "request failed";
  try {
    const body = await res.json();
    if (body && body.error) ({ code, message } = body.error);
  } catch { /* not JSON */ }
  return new ApiError(res.status, code, message);
}

/** One call. `body` is sent as JSON unless it is a Blob/string with `type`. */
export async function api(method, path, body, { token = session.token, type } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  let payload;
  if (body !== undefined) {
    if (type) { headers["Content-Type"] = type; payload = body; }
    else { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
  }
  let res;
  try {
    res = await fetch("/api/v1" + path, { method, headers, body: payload });
  } catch (e) {
    throw new ApiError(0, "network", "The server cannot be reached. Check that loupe is running.");
  }
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401 && token === session.token) onUnauthorized(err);
    throw err;
  }
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

export const get = (p) => api("GET", p);
export const post = (p, b) => api("POST", p, b === undefined ? {} : b);
export const patch = (p, b) => api("PATCH", p, b);
export const del = (p) => api("DELETE", p);

/** Upload with progress (fetch cannot report upload progress; XHR can). */
export function upload(path, file, type, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1" + path);
    xhr.setRequestHeader("Authorization", "Bearer " + session.token);
    xhr.setRequestHeader("Content-Type", type);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* empty */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else {
        const e = body && body.error ? body.error : { code: "http_" + xhr.status, message: xhr.statusText };
        reject(new ApiError(xhr.status, e.code, e.message));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, "network", "The upload failed: the server cannot be reached."));
    xhr.send(file);
  });
}

/** A download through fetch (the token stays in a header), saved as a file. */
export async function download(path, filename) {
  const res = await fetch("/api/v1" + path, { headers: { Authorization: "Bearer " + session.token } });
  if (!res.ok) throw await errorOf(res);
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return blob.size;
}

const RANK = { annotator: 1, reviewer: 2, admin: 3 };
/** Whether the signed-in token has at least `role` (service tokens rank below all). */
export function can(role) {
  return (RANK[session.me?.role] || 0) >= RANK[role];
}
