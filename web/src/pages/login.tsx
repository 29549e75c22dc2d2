import { useState } from "preact/hooks";

import { api, session } from "../api.js";
import { ErrorBox, useSubmit } from "../ui.js";

export function Login({ onLogin }: { onLogin: () => void }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const { busy, error, submit } = useSubmit(async () => {
    const response = await api.auth.login({ email, password });
    session.set(response.token);
    onLogin();
  });
  return (
    <main class="login">
      <h1>Pressluft</h1>
      <form onSubmit={submit}>
        <label>
          Email
          <input type="email" name="email" autocomplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input type="password" name="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        <ErrorBox error={error} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Logging in…" : "Log in"}
        </button>
      </form>
    </main>
  );
}
