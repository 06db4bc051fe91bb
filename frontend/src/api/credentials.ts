/**
 * What the browser holds besides the HttpOnly session cookie (which it never reads):
 * - the CSRF token, from the `deepscreen_csrf` cookie the API sets at sign-in; cookie-authenticated
 *   changes (POST, DELETE) must echo it in `X-CSRF-Token`;
 * - job tokens: an anonymous upload's job is readable only with the token returned once at
 *   submission, so they are kept in localStorage, sent as `X-Job-Token` (comma-separated for the
 *   jobs list) and as `?token=` where a header cannot be set (<img>, EventSource, downloads).
 */

const CSRF_COOKIE = "deepscreen_csrf";
const STORE_KEY = "deepscreen.jobTokens";
const MAX_SENT_TOKENS = 100; // the API reads at most this many

export function csrfToken(): string | null {
  if (typeof document === "undefined") return null;
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === CSRF_COOKIE) return decodeURIComponent(rest.join("="));
  }
  return null;
}

type TokenStore = Record<string, string>;

function load(): TokenStore {
  try {
    const raw = globalThis.localStorage?.getItem(STORE_KEY);
    const parsed: unknown = raw ? JSON.parse(raw) : {};
    return typeof parsed === "object" && parsed !== null ? (parsed as TokenStore) : {};
  } catch {
    return {};
  }
}

export function rememberJobToken(jobId: string, token: string): void {
  const store = load();
  store[jobId] = token;
  // Newest last; keep the most recent tokens only.
  const entries = Object.entries(store).slice(-MAX_SENT_TOKENS);
  try {
    globalThis.localStorage?.setItem(STORE_KEY, JSON.stringify(Object.fromEntries(entries)));
  } catch {
    // private mode or full storage: the job stays readable during this page's life only
  }
}

export function forgetJobToken(jobId: string): void {
  const store = load();
  delete store[jobId];
  globalThis.localStorage?.setItem(STORE_KEY, JSON.stringify(store));
}

export function jobToken(jobId: string): string | null {
  return load()[jobId] ?? null;
}

export function allJobTokens(): string[] {
  return Object.values(load()).slice(-MAX_SENT_TOKENS);
}

/** The job id in an API path like /api/jobs/{id}[/...], if any. */
export function jobIdOf(path: string): string | null {
  const match = /^\/api\/jobs\/([^/?#]+)/.exec(path);
  return match?.[1] ? decodeURIComponent(match[1]) : null;
}

/** Adds the job's token as a query parameter, for URLs the browser fetches without our headers. */
export function withJobToken(url: string, jobId: string): string {
  const token = jobToken(jobId);
  if (!token) return url;
  return `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`;
}

/** Headers a request to `path` needs: CSRF for changes, job tokens for job routes. */
export function credentialHeaders(method: string, path: string): Record<string, string> {
  const headers: Record<string, string> = {};
  if (!["GET", "HEAD", "OPTIONS"].includes(method.toUpperCase())) {
    const csrf = csrfToken();
    if (csrf) headers["X-CSRF-Token"] = csrf;
  }
  const jobId = jobIdOf(path);
  if (jobId) {
    const token = jobToken(jobId);
    if (token) headers["X-Job-Token"] = token;
  } else if (path === "/api/jobs" && method.toUpperCase() === "GET") {
    const tokens = allJobTokens();
    if (tokens.length > 0) headers["X-Job-Token"] = tokens.join(",");
  }
  return headers;
}
