/**
 * Who is signed in, shared by the header and the account pages. The server says whether accounts
 * exist at all (`GET /api/auth/config`: AUTH_MODE off, optional or required); with `off` the
 * account UI is not shown and every job is reached through its token.
 */
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";

import { api, call, type Schemas } from "./api/client";

export type AuthConfig = Schemas["AuthConfig"];
export type Account = Schemas["Account"];

export interface Session {
  config: AuthConfig | null;
  account: Account | null;
  loading: boolean;
  /** Re-reads the configuration and the signed-in account (after sign-in, sign-out or an upload). */
  refresh: () => Promise<void>;
  signOut: () => Promise<void>;
}

const SessionContext = createContext<Session | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [config, setConfig] = useState<AuthConfig | null>(null);
  const [account, setAccount] = useState<Account | null>(null);
  const [loading, setLoading] = useState(true);

  const refresh = useCallback(async () => {
    try {
      const loaded = await call(() => api.GET("/api/auth/config"));
      setConfig(loaded);
      setAccount(loaded.mode !== "off" && loaded.signed_in ? await call(() => api.GET("/api/auth/me")) : null);
    } catch {
      // Accounts unavailable (an older API, or a network error): behave as without accounts.
      setConfig(null);
      setAccount(null);
    } finally {
      setLoading(false);
    }
  }, []);

  const signOut = useCallback(async () => {
    try {
      await call(() => api.POST("/api/auth/logout"));
    } finally {
      await refresh();
    }
  }, [refresh]);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  const value = useMemo(() => ({ config, account, loading, refresh, signOut }), [config, account, loading, refresh, signOut]);
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession needs a SessionProvider");
  return session;
}

export function accountsEnabled(session: Session): boolean {
  return session.config !== null && session.config.mode !== "off";
}
