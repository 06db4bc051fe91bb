import { NavLink, Route, Routes } from "react-router-dom";

import { AboutPage } from "./pages/AboutPage";
import { AccountPage } from "./pages/AccountPage";
import { AnalyzePage } from "./pages/AnalyzePage";
import { HistoryPage } from "./pages/HistoryPage";
import { JobPage } from "./pages/JobPage";
import { NotFoundPage } from "./pages/NotFoundPage";
import { SharedPage } from "./pages/SharedPage";
import { SignInPage } from "./pages/SignInPage";
import { accountsEnabled, useSession } from "./session";

export function App() {
  const session = useSession();
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="site-header">
        <div className="container header-inner">
          <NavLink to="/" className="brand" end>
            <img src="/favicon.svg" alt="" width="28" height="28" />
            DeepScreen
          </NavLink>
          <nav aria-label="Main">
            <ul className="nav">
              <li>
                <NavLink to="/" end>
                  Analyse
                </NavLink>
              </li>
              <li>
                <NavLink to="/history">History</NavLink>
              </li>
              <li>
                <NavLink to="/about">About</NavLink>
              </li>
              {accountsEnabled(session) ? (
                <li>
                  {session.account ? (
                    <NavLink to="/account" data-testid="nav-account">
                      Account
                    </NavLink>
                  ) : (
                    <NavLink to="/signin" data-testid="nav-signin">
                      Sign in
                    </NavLink>
                  )}
                </li>
              ) : null}
            </ul>
          </nav>
        </div>
      </header>
      <main id="main" className="container" tabIndex={-1}>
        <Routes>
          <Route path="/" element={<AnalyzePage />} />
          <Route path="/jobs/:jobId" element={<JobPage />} />
          <Route path="/shared/:token" element={<SharedPage />} />
          <Route path="/history" element={<HistoryPage />} />
          <Route path="/about" element={<AboutPage />} />
          <Route path="/signin" element={<SignInPage mode="signin" />} />
          <Route path="/register" element={<SignInPage mode="register" />} />
          <Route path="/account" element={<AccountPage />} />
          <Route path="*" element={<NotFoundPage />} />
        </Routes>
      </main>
      <footer className="site-footer container muted small">
        DeepScreen gives a model's estimate, not proof. Open source, Apache-2.0.
      </footer>
    </>
  );
}
