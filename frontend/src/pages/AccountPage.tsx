import { useEffect, useState } from "react";
import { Link, useNavigate } from "react-router-dom";

import { api, call, type Schemas } from "../api/client";
import { ErrorMessage } from "../components/ErrorMessage";
import { formatBytes, formatDateTime, formatSeconds } from "../lib/format";
import { useSession } from "../session";

type ApiKey = Schemas["ApiKeyPublic"];

/** The signed-in user: tier, today's quota, API keys, sign out. */
export function AccountPage() {
  const session = useSession();
  const navigate = useNavigate();
  const [keys, setKeys] = useState<ApiKey[] | null>(null);
  const [newKey, setNewKey] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const account = session.account;

  const { refresh } = session;
  useEffect(() => {
    document.title = "Account · DeepScreen";
    void refresh(); // today's quota may have changed since the page loaded
  }, [refresh]);

  useEffect(() => {
    if (!account) return;
    call(() => api.GET("/api/account/keys")).then(setKeys, setError);
  }, [account]);

  if (session.loading) return <p aria-live="polite">Loading…</p>;
  if (!account) {
    return (
      <>
        <h1>Account</h1>
        <p>
          You are not signed in. <Link to="/signin">Sign in</Link> or <Link to="/register">create an account</Link>.
        </p>
      </>
    );
  }

  const { quota, limits, user } = account;
  const createKey = async () => {
    setError(null);
    try {
      const created = await call(() => api.POST("/api/account/keys", { body: { name: "API key" } }));
      setNewKey(created.key);
      setKeys(await call(() => api.GET("/api/account/keys")));
    } catch (exc) {
      setError(exc);
    }
  };
  const revokeKey = async (id: string) => {
    setError(null);
    try {
      await call(() => api.DELETE("/api/account/keys/{key_id}", { params: { path: { key_id: id } } }));
      setKeys(await call(() => api.GET("/api/account/keys")));
    } catch (exc) {
      setError(exc);
    }
  };

  return (
    <>
      <div className="row-between page-head">
        <h1>Account</h1>
        <button
          type="button"
          className="button button-secondary"
          data-testid="sign-out"
          onClick={() => void session.signOut().then(() => navigate("/"))}
        >
          Sign out
        </button>
      </div>
      <ErrorMessage error={error} />
      <section className="card" aria-labelledby="profile-title">
        <h2 id="profile-title">Profile</h2>
        <dl className="details">
          <div>
            <dt>Email</dt>
            <dd data-testid="account-email">{user.email}</dd>
          </div>
          <div>
            <dt>Plan</dt>
            <dd>{user.tier}</dd>
          </div>
          <div>
            <dt>Member since</dt>
            <dd>{formatDateTime(user.created_at)}</dd>
          </div>
        </dl>
      </section>
      <section className="card" aria-labelledby="quota-title" data-testid="quota">
        <h2 id="quota-title">Today's uploads</h2>
        <p>
          {quota.used} of {quota.limit} used; resets {formatDateTime(quota.resets_at)}.
        </p>
        <progress className="bar" max={Math.max(quota.limit, 1)} value={Math.min(quota.used, quota.limit)} aria-label="Uploads used today" />
        <p className="muted small">
          Largest file {formatBytes(limits.max_upload_bytes)}; longest video {formatSeconds(limits.max_video_seconds)}.
        </p>
      </section>
      <section className="card" aria-labelledby="keys-title">
        <div className="row-between">
          <h2 id="keys-title">API keys</h2>
          <button type="button" className="button button-secondary" onClick={() => void createKey()}>
            Create a key
          </button>
        </div>
        <p className="muted small">
          For scripts: send a key as <code>Authorization: Bearer …</code>. A key is shown once, when it is created.
        </p>
        {newKey ? (
          <p className="alert" role="status">
            New key (copy it now): <code className="mono wrap">{newKey}</code>
          </p>
        ) : null}
        {keys && keys.length > 0 ? (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Starts with</th>
                  <th scope="col">Created</th>
                  <th scope="col">Last used</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {keys.map((key) => (
                  <tr key={key.id}>
                    <th scope="row">{key.name}</th>
                    <td className="mono">{key.prefix}…</td>
                    <td>{formatDateTime(key.created_at)}</td>
                    <td>{formatDateTime(key.last_used_at)}</td>
                    <td>
                      <button type="button" className="button button-secondary" onClick={() => void revokeKey(key.id)}>
                        Revoke<span className="visually-hidden"> {key.name}</span>
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <p className="muted small">No keys.</p>
        )}
      </section>
    </>
  );
}
