import { useState, type FormEvent } from 'react';
import { useClient, useErrors, useQuery } from '../api/hooks';
import { InviteUserDocument, TenantMembersDocument } from '../gql/graphql';
import { ErrorList, LoadErrors } from './ErrorList';
import { time } from './format';

/** The tenant's members, roles and open invitations; inviting someone with a role. */
export function Members() {
  const client = useClient();
  const { data, errors, refetch } = useQuery(TenantMembersDocument, {});
  const tenant = data?.tenant;
  const [email, setEmail] = useState('');
  const [role, setRole] = useState('member');
  const [invitation, setInvitation] = useState<{ email: string; token: string } | null>(null);
  const failures = useErrors();

  async function invite(event: FormEvent) {
    event.preventDefault();
    setInvitation(null);
    const result = await failures.run(() => client.request(InviteUserDocument, { input: { email: email.trim(), role } }));
    const invited = result?.data?.inviteUser;
    if (invited) {
      setInvitation({ email: invited.invitation.email, token: invited.token });
      setEmail('');
      await refetch();
    }
  }

  return (
    <section className="panel members">
      <h2>Members{tenant ? ` of ${tenant.name}` : ''}</h2>
      <LoadErrors errors={errors} />
      {tenant?.users && (
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Email</th>
              <th>Roles</th>
              <th>Since</th>
            </tr>
          </thead>
          <tbody>
            {tenant.users.map((user) => (
              <tr key={user.id}>
                <td>{user.name}</td>
                <td>{user.email}</td>
                <td>{user.roles.join(', ')}</td>
                <td className="muted">{time(user.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {tenant?.invitations && tenant.invitations.length > 0 && (
        <>
          <h3>Open invitations</h3>
          <ul>
            {tenant.invitations.map((inv) => (
              <li key={inv.id}>
                {inv.email} as {inv.role} <span className="muted">until {time(inv.expiresAt)}</span>
              </li>
            ))}
          </ul>
        </>
      )}
      <form className="row" onSubmit={invite}>
        <input type="email" placeholder="Invite by email" value={email} onChange={(e) => setEmail(e.target.value)} required />
        <select value={role} onChange={(e) => setRole(e.target.value)} aria-label="role">
          {(tenant?.roles ?? [{ name: 'member' }]).map((r) => (
            <option key={r.name} value={r.name}>
              {r.name}
            </option>
          ))}
        </select>
        <button type="submit" disabled={!email.trim()}>
          Invite
        </button>
      </form>
      {invitation && (
        <p className="notice">
          Invitation for {invitation.email}: give them this token (shown once) to accept it: <code>{invitation.token}</code>
        </p>
      )}
      <ErrorList errors={failures.errors} onDismiss={failures.clear} />
    </section>
  );
}
