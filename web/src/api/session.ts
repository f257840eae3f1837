/**
 * Signed-in sessions, one per tenant, kept in localStorage. Signing in is OAuth at `POST /oauth/token` on this
 * origin (the gateway passes it to the tenancy issuer): the dev-login grant (tenant slug and a member's email)
 * answers an access token and a refresh token; the refresh_token grant renews them (each refresh token is used
 * once and replaced).
 */
import { ApiError } from './errors';

export const DEV_LOGIN_GRANT = 'urn:jarvis:params:oauth:grant-type:dev-login';
export const TOKEN_PATH = '/oauth/token';

export interface Session {
  /** The tenant's slug. */
  tenant: string;
  email: string;
  accessToken: string;
  refreshToken?: string;
  /** When the access token expires, in ms since the epoch. */
  expiresAt: number;
}

const SESSIONS_KEY = 'jarvis.sessions';
const CURRENT_KEY = 'jarvis.currentTenant';

export function loadSessions(): Session[] {
  try {
    const parsed = JSON.parse(localStorage.getItem(SESSIONS_KEY) ?? '[]') as unknown;
    return Array.isArray(parsed) ? parsed.filter(isSession) : [];
  } catch {
    return [];
  }
}

export function saveSessions(sessions: Session[]): void {
  localStorage.setItem(SESSIONS_KEY, JSON.stringify(sessions));
}

export function loadCurrentTenant(): string | null {
  return localStorage.getItem(CURRENT_KEY);
}

export function saveCurrentTenant(tenant: string | null): void {
  if (tenant === null) localStorage.removeItem(CURRENT_KEY);
  else localStorage.setItem(CURRENT_KEY, tenant);
}

/** The session the console uses now (GraphiQL borrows its token). */
export function currentSession(): Session | undefined {
  const sessions = loadSessions();
  const tenant = loadCurrentTenant();
  return sessions.find((session) => session.tenant === tenant) ?? sessions[0];
}

/** Adds or replaces the tenant's session. */
export function storeSession(session: Session): Session[] {
  const sessions = [...loadSessions().filter((s) => s.tenant !== session.tenant), session];
  saveSessions(sessions);
  return sessions;
}

export function removeSession(tenant: string): Session[] {
  const sessions = loadSessions().filter((s) => s.tenant !== tenant);
  saveSessions(sessions);
  return sessions;
}

export async function signIn(tenant: string, email: string): Promise<Session> {
  const tokens = await tokenRequest({ grant_type: DEV_LOGIN_GRANT, tenant, email });
  return { tenant, email, ...tokens };
}

export async function refreshSession(session: Session): Promise<Session> {
  if (!session.refreshToken) throw new ApiError([{ message: 'the session has expired: sign in again', code: 'UNAUTHENTICATED' }]);
  const tokens = await tokenRequest({ grant_type: 'refresh_token', refresh_token: session.refreshToken });
  return { ...session, ...tokens };
}

async function tokenRequest(form: Record<string, string>): Promise<Pick<Session, 'accessToken' | 'refreshToken' | 'expiresAt'>> {
  const response = await fetch(TOKEN_PATH, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams(form),
  });
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok || typeof body.access_token !== 'string') {
    const code = typeof body.error === 'string' ? body.error : `HTTP_${response.status}`;
    const message = typeof body.error_description === 'string' ? body.error_description : `sign-in failed (${response.status})`;
    throw new ApiError([{ message, code }]);
  }
  return {
    accessToken: body.access_token,
    refreshToken: typeof body.refresh_token === 'string' ? body.refresh_token : undefined,
    expiresAt: Date.now() + (typeof body.expires_in === 'number' ? body.expires_in : expiresIn(body.access_token)) * 1000,
  };
}

/** Seconds until a JWT's `exp` (15 minutes when it cannot be read). */
function expiresIn(token: string): number {
  try {
    const payload = JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { exp?: number };
    return payload.exp ? payload.exp - Date.now() / 1000 : 900;
  } catch {
    return 900;
  }
}

function isSession(value: unknown): value is Session {
  const session = value as Partial<Session> | null;
  return !!session && typeof session.tenant === 'string' && typeof session.email === 'string' && typeof session.accessToken === 'string' && typeof session.expiresAt === 'number';
}
