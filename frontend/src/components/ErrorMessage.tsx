import { Link } from "react-router-dom";

import { ApiError } from "../api/client";
import { describeError } from "../lib/format";

/** Explains a failed request in words, with the server's own message and request id for support. */
export function ErrorMessage({ error, title }: { error: unknown; title?: string }) {
  if (error === null || error === undefined) return null;
  const apiError = error instanceof ApiError ? error : null;
  const explanation = apiError ? describeError(apiError.code) : "Something went wrong.";
  const accepted = apiError?.details["accepted"] ?? apiError?.details["accepted_types"];
  const limit = apiError?.details["limit"] ?? apiError?.details["max_bytes"] ?? apiError?.details["max_seconds"];
  return (
    <div className="alert alert-error" role="alert" data-testid="error-message">
      <p className="alert-title">{title ?? "That did not work"}</p>
      <p>{explanation}</p>
      {apiError && apiError.message && apiError.message !== explanation ? <p className="muted">{apiError.message}</p> : null}
      {Array.isArray(accepted) ? <p className="muted">Accepted types: {accepted.map(String).join(", ")}.</p> : null}
      {limit !== undefined && limit !== null && typeof limit !== "object" ? <p className="muted">Limit: {String(limit)}.</p> : null}
      {apiError?.code === "not_authenticated" ? (
        <p>
          <Link to="/signin">Sign in</Link> or <Link to="/register">create an account</Link>.
        </p>
      ) : null}
      {apiError?.requestId ? <p className="muted small">Request id: {apiError.requestId}</p> : null}
    </div>
  );
}
