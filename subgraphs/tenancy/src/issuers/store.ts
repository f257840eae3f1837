import type { Transaction } from '@jarvis/platform/db';

export interface TrustedIssuer {
  id: string;
  tenantId: string;
  issuer: string;
  jwksUrl: string;
  audience: string;
  emailClaim: string;
  rolesClaim: string | null;
  /** Issuer-side value (a group, a role) → Jarvis role. */
  roleMapping: Record<string, string>;
  provisionUsers: boolean;
  createdAt: Date;
}

const COLUMNS = `id, tenant_id AS "tenantId", issuer, jwks_url AS "jwksUrl", audience, email_claim AS "emailClaim",
  roles_claim AS "rolesClaim", role_mapping AS "roleMapping", provision_users AS "provisionUsers", created_at AS "createdAt"`;

export async function insertTrustedIssuer(tx: Transaction, issuer: Omit<TrustedIssuer, 'createdAt'>): Promise<TrustedIssuer> {
  const [row] = await tx.query<TrustedIssuer>(
    `INSERT INTO trusted_issuers (id, tenant_id, issuer, jwks_url, audience, email_claim, roles_claim, role_mapping, provision_users)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ${COLUMNS}`,
    [issuer.id, issuer.tenantId, issuer.issuer, issuer.jwksUrl, issuer.audience, issuer.emailClaim, issuer.rolesClaim, JSON.stringify(issuer.roleMapping), issuer.provisionUsers],
  );
  return row!;
}

export function trustedIssuers(tx: Transaction): Promise<TrustedIssuer[]> {
  return tx.query<TrustedIssuer>(`SELECT ${COLUMNS} FROM trusted_issuers ORDER BY issuer, audience`);
}

export async function deleteTrustedIssuer(tx: Transaction, id: string): Promise<boolean> {
  return (await tx.query(`DELETE FROM trusted_issuers WHERE id = $1 RETURNING id`, [id])).length > 0;
}

/** The tenants that trust an issuer, before any tenant is in scope. */
export async function tenantsTrusting(tx: Transaction, issuer: string): Promise<string[]> {
  const rows = await tx.query<{ id: string }>(`SELECT tenants_trusting AS id FROM tenants_trusting($1)`, [issuer]);
  return rows.map((row) => row.id);
}
