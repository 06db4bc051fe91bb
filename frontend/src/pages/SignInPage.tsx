import { useEffect, useId, useState, type FormEvent } from "react";
import { Link, useLocation, useNavigate } from "react-router-dom";

import { api, call } from "../api/client";
import { ErrorMessage } from "../components/ErrorMessage";
import { accountsEnabled, useSession } from "../session";

/** Sign in or register: one form, two modes, so the two never drift apart. */
export function SignInPage({ mode }: { mode: "signin" | "register" }) {
  const session = useSession();
  const navigate = useNavigate();
  const location = useLocation();
  const emailId = useId();
  const passwordId = useId();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const registering = mode === "register";
  const next = (location.state as { from?: string } | null)?.from ?? "/history";

  useEffect(() => {
    document.title = `${registering ? "Create an account" : "Sign in"} · DeepScreen`;
  }, [registering]);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = { email, password };
      await call(() => (registering ? api.POST("/api/auth/register", { body }) : api.POST("/api/auth/login", { body })));
      await session.refresh();
      navigate(next, { replace: true });
    } catch (exc) {
      setError(exc);
    } finally {
      setBusy(false);
    }
  };

  if (!session.loading && !accountsEnabled(session)) {
    return (
      <>
        <h1>Accounts are turned off</h1>
        <p>
          This server runs without accounts: each analysis stays available in this browser. <Link to="/">Analyse a file</Link>.
        </p>
      </>
    );
  }

  const minLength = session.config?.password_min_length ?? 10;
  return (
    <>
      <h1>{registering ? "Create an account" : "Sign in"}</h1>
      <form className="card form" onSubmit={(event) => void submit(event)} noValidate={false}>
        <label htmlFor={emailId}>
          Email
          <input id={emailId} type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label htmlFor={passwordId}>
          Password
          <input
            id={passwordId}
            type="password"
            autoComplete={registering ? "new-password" : "current-password"}
            required
            minLength={registering ? minLength : undefined}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            aria-describedby={registering ? `${passwordId}-hint` : undefined}
          />
        </label>
        {registering ? (
          <p id={`${passwordId}-hint`} className="muted small">
            At least {minLength} characters; common passwords are refused.
          </p>
        ) : null}
        <button type="submit" className="button" disabled={busy} data-testid={registering ? "register-submit" : "signin-submit"}>
          {registering ? "Create account" : "Sign in"}
        </button>
        <ErrorMessage error={error} title={registering ? "The account was not created" : "You are not signed in"} />
      </form>
      <p>
        {registering ? (
          <>
            Already have an account? <Link to="/signin">Sign in</Link>
          </>
        ) : (
          <>
            New here? <Link to="/register">Create an account</Link>
          </>
        )}
      </p>
    </>
  );
}
