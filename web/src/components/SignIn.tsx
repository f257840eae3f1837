import { useState, type FormEvent } from 'react';
import { useErrors } from '../api/hooks';
import { signIn, type Session } from '../api/session';
import { ErrorList } from './ErrorList';

/** Dev-login at /oauth/token: a tenant's slug and one of its members' email. */
export function SignIn({ onSignedIn, onCancel }: { onSignedIn: (session: Session) => void; onCancel?: () => void }) {
  const [tenant, setTenant] = useState('demo');
  const [email, setEmail] = useState('owner@demo.test');
  const [busy, setBusy] = useState(false);
  const failures = useErrors();

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    failures.clear();
    try {
      onSignedIn(await signIn(tenant.trim(), email.trim()));
    } catch (error) {
      failures.report(error);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="panel signin" onSubmit={submit}>
      <h2>Sign in</h2>
      <label>
        Tenant
        <input data-testid="signin-tenant" value={tenant} onChange={(e) => setTenant(e.target.value)} autoComplete="organization" required />
      </label>
      <label>
        Email
        <input data-testid="signin-email" type="email" value={email} onChange={(e) => setEmail(e.target.value)} autoComplete="email" required />
      </label>
      <div className="row">
        <button data-testid="signin-submit" type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        {onCancel && (
          <button type="button" className="secondary" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
      <ErrorList errors={failures.errors} />
    </form>
  );
}
