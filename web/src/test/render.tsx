/** Rendering a component inside a signed-in session, as the console's App does, with a real JarvisClient. */
import { render } from '@testing-library/react';
import type { ReactElement } from 'react';
import { onTestFinished } from 'vitest';
import { JarvisClient } from '../api/client';
import { ClientContext } from '../api/hooks';
import type { Session } from '../api/session';

/** A session whose access token is good for another 15 minutes (no renewal during a test). */
export function sessionOf(tenant: string): Session {
  return {
    tenant,
    email: `ada@${tenant}.test`,
    accessToken: `access-${tenant}`,
    refreshToken: `refresh-${tenant}`,
    expiresAt: Date.now() + 15 * 60_000,
  };
}

/** Renders `ui` with a client for `session` in context; the client's socket is closed when the test ends. */
export function renderSignedIn(ui: ReactElement, session: Session = sessionOf('acme')) {
  const client = new JarvisClient(session, () => {});
  onTestFinished(() => client.dispose());
  return { client, ...render(<ClientContext.Provider value={client}>{ui}</ClientContext.Provider>) };
}
