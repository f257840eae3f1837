import { useCallback, useEffect, useMemo, useState } from 'react';
import { JarvisClient } from './api/client';
import type { ApiErrorInfo } from './api/errors';
import { ClientContext } from './api/hooks';
import { loadCurrentTenant, loadSessions, removeSession, saveCurrentTenant, storeSession, type Session } from './api/session';
import { Console } from './components/Console';
import { ErrorList } from './components/ErrorList';
import { SignIn } from './components/SignIn';

/** Sessions per tenant (localStorage), the switcher between them, and the console of the current one. */
export function App() {
  const [sessions, setSessions] = useState<Session[]>(loadSessions);
  const [current, setCurrent] = useState<string | null>(() => {
    const saved = loadCurrentTenant();
    return sessions.some((s) => s.tenant === saved) ? saved : (sessions[0]?.tenant ?? null);
  });
  const [addingTenant, setAddingTenant] = useState(false);
  const [sessionErrors, setSessionErrors] = useState<ApiErrorInfo[]>([]);

  useEffect(() => saveCurrentTenant(current), [current]);

  const session = sessions.find((s) => s.tenant === current);
  // One client per signed-in tenant; a renewed token is kept without a new client.
  const sessionTenant = session?.tenant;
  const client = useMemo(() => {
    const initial = sessionTenant ? loadSessions().find((s) => s.tenant === sessionTenant) : undefined;
    if (!initial) return null;
    return new JarvisClient(
      initial,
      (renewed) => setSessions(storeSession(renewed)),
      (errors) => setSessionErrors(errors),
    );
  }, [sessionTenant]);
  useEffect(() => () => client?.dispose(), [client]);

  const signedIn = useCallback((next: Session) => {
    setSessions(storeSession(next));
    setCurrent(next.tenant);
    setAddingTenant(false);
    setSessionErrors([]);
  }, []);

  const signOut = useCallback(() => {
    if (!current) return;
    const rest = removeSession(current);
    setSessions(rest);
    setCurrent(rest[0]?.tenant ?? null);
    setSessionErrors([]);
  }, [current]);

  if (!client || !session) {
    return (
      <main className="app">
        <header className="top">
          <h1>Jarvis</h1>
        </header>
        <SignIn onSignedIn={signedIn} />
      </main>
    );
  }

  return (
    <ClientContext.Provider value={client}>
      <main className="app">
        <Console
          key={session.tenant}
          session={session}
          sessions={sessions}
          onSwitch={(tenant) => {
            setCurrent(tenant);
            setSessionErrors([]);
          }}
          onAddTenant={() => setAddingTenant(true)}
          onSignOut={signOut}
        />
        {addingTenant && (
          <div className="overlay">
            <SignIn onSignedIn={signedIn} onCancel={() => setAddingTenant(false)} />
          </div>
        )}
        {sessionErrors.length > 0 && (
          <div className="panel">
            <ErrorList errors={sessionErrors} onDismiss={() => setSessionErrors([])} />
            <button type="button" onClick={signOut}>
              Sign in again
            </button>
          </div>
        )}
      </main>
    </ClientContext.Provider>
  );
}
