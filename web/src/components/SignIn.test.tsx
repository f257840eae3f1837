/**
 * Sign-in and sessions (SignIn in App): the dev-login grant at /oauth/token, the refusal it may answer
 * (RFC 6749 `error` and `error_description`), one session per tenant in localStorage, switching between them
 * and signing out. The fake gateway answers the Session query for whichever tenant the bearer token is for, so
 * the tenant shown proves which session's token the console used.
 */
import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent, { type UserEvent } from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { App } from '../App';
import { DEV_LOGIN_GRANT } from '../api/session';
import { FakeGateway, type GraphQLBody } from '../test/fake-gateway';

const MEMBERS: Record<string, { name: string; email: string; member: string }> = {
  acme: { name: 'Acme Corp', email: 'ada@acme.test', member: 'Ada Lovelace' },
  globex: { name: 'Globex', email: 'hank@globex.test', member: 'Hank Scorpio' },
};

/** The tenant an access token was issued for (the fake issues `access-<tenant>-<n>`). */
const tenantOf = (authorization: string | undefined) => /^Bearer access-([a-z]+)-\d+$/.exec(authorization ?? '')?.[1];

function setUp() {
  const gateway = new FakeGateway().install();
  let issued = 0;
  gateway.tokenEndpoint = (form) => {
    const member = MEMBERS[form.get('tenant') ?? ''];
    if (form.get('grant_type') !== DEV_LOGIN_GRANT) return { status: 400, body: { error: 'unsupported_grant_type', error_description: 'not in this test' } };
    if (!member || member.email !== form.get('email')) {
      return { status: 400, body: { error: 'invalid_grant', error_description: 'no such member of that tenant' } };
    }
    issued += 1;
    return {
      status: 200,
      body: { access_token: `access-${form.get('tenant')}-${issued}`, refresh_token: `refresh-${issued}`, token_type: 'Bearer', expires_in: 900 },
    };
  };
  gateway.answer('Session', ({ authorization }): GraphQLBody => {
    const slug = tenantOf(authorization);
    const member = slug ? MEMBERS[slug] : undefined;
    if (!slug || !member) return { data: null, errors: [{ message: 'sign in first', extensions: { code: 'UNAUTHENTICATED' } }] };
    return {
      data: {
        me: { id: `user-${slug}`, name: member.member, email: member.email, roles: ['OWNER'], createdAt: '2026-01-01T00:00:00.000Z', permissions: [], groups: [] },
        tenant: { id: `tenant-${slug}`, name: member.name, slug, plan: 'TEAM', isolation: 'SHARED' },
      },
    };
  });
  // The console's other panels load too; they have nothing to show here.
  gateway.answer('KnowledgeBases', ({ authorization }) => ({ data: { tenant: { id: `tenant-${tenantOf(authorization)}`, knowledgeBases: [] } } }));
  gateway.answer('Conversations', ({ authorization }) => ({ data: { tenant: { id: `tenant-${tenantOf(authorization)}`, conversations: [] } } }));
  gateway.answer('Usage', () => ({ data: { tenant: null } }));
  gateway.answer('TenantMembers', () => ({ data: { tenant: null } }));
  gateway.answer('Definitions', ({ authorization }) => ({ data: { tenant: { id: `tenant-${tenantOf(authorization)}`, definitions: [] } } }));
  gateway.answer('Runs', ({ authorization }) => ({ data: { tenant: { id: `tenant-${tenantOf(authorization)}`, runs: [] } } }));
  return { gateway, user: userEvent.setup() };
}

/** Fills the (only) sign-in form and submits it. */
async function signIn(user: UserEvent, tenant: string, email: string) {
  const form = screen.getByRole('heading', { name: 'Sign in' }).closest('form')!;
  const tenantField = within(form).getByRole('textbox', { name: 'Tenant' });
  const emailField = within(form).getByRole('textbox', { name: 'Email' });
  await user.clear(tenantField);
  await user.type(tenantField, tenant);
  await user.clear(emailField);
  await user.type(emailField, email);
  await user.click(within(form).getByRole('button', { name: 'Sign in' }));
}

const tenantShown = () => screen.getByTestId('tenant-name');
const storedSessions = () => JSON.parse(localStorage.getItem('jarvis.sessions') ?? '[]') as { tenant: string; email: string; accessToken: string }[];

describe('sign-in and sessions', () => {
  it('signs in, shows the tenant, and keeps the session for the next visit', async () => {
    const { gateway, user } = setUp();
    const first = render(<App />);
    expect(screen.queryByTestId('tenant-name')).not.toBeInTheDocument();

    await signIn(user, 'acme', 'ada@acme.test');

    await waitFor(() => expect(tenantShown()).toHaveTextContent('Acme Corp'));
    expect(screen.getByText(/Ada Lovelace <ada@acme\.test> \(OWNER\)/)).toBeInTheDocument();
    expect(screen.queryByRole('heading', { name: 'Sign in' })).not.toBeInTheDocument();
    const form = gateway.tokenRequests[0]!;
    expect(Object.fromEntries(form)).toEqual({ grant_type: DEV_LOGIN_GRANT, tenant: 'acme', email: 'ada@acme.test' });
    expect(gateway.requests.find((r) => r.operationName === 'Session')?.authorization).toBe('Bearer access-acme-1');
    expect(storedSessions()).toEqual([expect.objectContaining({ tenant: 'acme', email: 'ada@acme.test', accessToken: 'access-acme-1' })]);
    expect(localStorage.getItem('jarvis.currentTenant')).toBe('acme');

    // A new visit (a reload) starts signed in with the stored session, without signing in again.
    first.unmount();
    render(<App />);
    await waitFor(() => expect(tenantShown()).toHaveTextContent('Acme Corp'));
    expect(gateway.tokenRequests).toHaveLength(1);
  });

  it("shows the token endpoint's refusal, its error code and description, and stores nothing", async () => {
    const { gateway, user } = setUp();
    render(<App />);

    await signIn(user, 'acme', 'mallory@acme.test');

    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('invalid_grant no such member of that tenant');
    expect(alert).toHaveAttribute('data-code', 'invalid_grant');
    expect(screen.getByRole('button', { name: 'Sign in' })).toBeEnabled();
    expect(screen.queryByTestId('tenant-name')).not.toBeInTheDocument();
    expect(gateway.requests).toHaveLength(0);
    expect(storedSessions()).toEqual([]);

    // Signing in correctly then clears the error.
    await signIn(user, 'acme', 'ada@acme.test');
    await waitFor(() => expect(tenantShown()).toHaveTextContent('Acme Corp'));
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
  });

  it('keeps one session per tenant and switches between them with their own tokens', async () => {
    const { gateway, user } = setUp();
    render(<App />);
    await signIn(user, 'acme', 'ada@acme.test');
    await waitFor(() => expect(tenantShown()).toHaveTextContent('Acme Corp'));

    await user.click(screen.getByRole('button', { name: 'Sign in to another tenant' }));
    await signIn(user, 'globex', 'hank@globex.test');
    await waitFor(() => expect(tenantShown()).toHaveTextContent('Globex'));

    const switcher = screen.getByRole('combobox', { name: 'Tenant' });
    expect(within(switcher).getAllByRole('option').map((option) => option.textContent)).toEqual([
      'acme (ada@acme.test)',
      'globex (hank@globex.test)',
    ]);
    expect(switcher).toHaveValue('globex');
    expect(storedSessions().map((s) => s.tenant)).toEqual(['acme', 'globex']);

    await user.selectOptions(switcher, 'acme');
    await waitFor(() => expect(tenantShown()).toHaveTextContent('Acme Corp'));
    expect(gateway.requests.filter((r) => r.operationName === 'Session').at(-1)?.authorization).toBe('Bearer access-acme-1');
    expect(localStorage.getItem('jarvis.currentTenant')).toBe('acme');

    await user.selectOptions(screen.getByRole('combobox', { name: 'Tenant' }), 'globex');
    await waitFor(() => expect(tenantShown()).toHaveTextContent('Globex'));
    expect(gateway.requests.filter((r) => r.operationName === 'Session').at(-1)?.authorization).toBe('Bearer access-globex-2');
    expect(gateway.tokenRequests).toHaveLength(2);
  });

  it('signs out of the current tenant only, then back to the sign-in form', async () => {
    const { user } = setUp();
    render(<App />);
    await signIn(user, 'acme', 'ada@acme.test');
    await waitFor(() => expect(tenantShown()).toHaveTextContent('Acme Corp'));
    await user.click(screen.getByRole('button', { name: 'Sign in to another tenant' }));
    await signIn(user, 'globex', 'hank@globex.test');
    await waitFor(() => expect(tenantShown()).toHaveTextContent('Globex'));

    await user.click(screen.getByRole('button', { name: 'Sign out' }));
    await waitFor(() => expect(tenantShown()).toHaveTextContent('Acme Corp'));
    expect(within(screen.getByRole('combobox', { name: 'Tenant' })).getAllByRole('option').map((o) => o.textContent)).toEqual(['acme (ada@acme.test)']);
    expect(storedSessions().map((s) => s.tenant)).toEqual(['acme']);

    await user.click(screen.getByRole('button', { name: 'Sign out' }));
    expect(screen.getByRole('heading', { name: 'Sign in' })).toBeInTheDocument();
    expect(screen.queryByTestId('tenant-name')).not.toBeInTheDocument();
    expect(storedSessions()).toEqual([]);
    expect(localStorage.getItem('jarvis.currentTenant')).toBeNull();
  });
});
