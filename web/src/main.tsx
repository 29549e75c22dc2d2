// The browser UI: a hash router behind a login gate. Every page talks grpc-web to the same
// origin that served it.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";

import { api, session, whenSessionExpires } from "./api.js";
import { Audit } from "./pages/audit.js";
import { JobPage, Jobs } from "./pages/jobs.js";
import { Login } from "./pages/login.js";
import { Nodes } from "./pages/nodes.js";
import { SitePage } from "./pages/site.js";
import { Sites } from "./pages/sites.js";

function useHash(): string {
  const [hash, setHash] = useState(window.location.hash || "#/sites");
  useEffect(() => {
    const changed = () => setHash(window.location.hash || "#/sites");
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return hash;
}

function Page({ hash }: { hash: string }) {
  const [, section, id] = hash.replace(/^#/, "").split("/");
  if (section === "sites" && id) return <SitePage siteId={id} />;
  if (section === "nodes") return <Nodes />;
  if (section === "jobs" && id) return <JobPage jobId={id} />;
  if (section === "jobs") return <Jobs />;
  if (section === "activity") return <Audit />;
  return <Sites />;
}

function App() {
  const [loggedIn, setLoggedIn] = useState(session.token() !== null);
  const [expired, setExpired] = useState(false);
  const hash = useHash();
  useEffect(() => {
    whenSessionExpires(() => {
      setExpired(true);
      setLoggedIn(false);
    });
  }, []);
  if (!loggedIn) {
    return (
      <>
        {expired && <p class="notice" role="status">Your session ended; log in again.</p>}
        <Login onLogin={() => (setExpired(false), setLoggedIn(true))} />
      </>
    );
  }
  const logout = async () => {
    try {
      await api.auth.logout({});
    } finally {
      session.clear();
      setLoggedIn(false);
    }
  };
  const link = (to: string, text: string) => (
    <a href={to} aria-current={hash.startsWith(to) ? "page" : undefined}>
      {text}
    </a>
  );
  return (
    <>
      <header>
        <strong>Pressluft</strong>
        <nav aria-label="main">
          {link("#/sites", "Sites")}
          {link("#/nodes", "Nodes")}
          {link("#/jobs", "Jobs")}
          {link("#/activity", "Activity")}
        </nav>
        <button type="button" onClick={logout}>
          Log out
        </button>
      </header>
      <main>
        <Page hash={hash} />
      </main>
    </>
  );
}

const root = document.getElementById("app");
if (root) render(<App />, root);
