import { jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
import { PLANS, type Plan } from './plans.ts';

/** Who is calling, as the gateway established it. Subgraphs trust it only with the gateway's signature. */
export interface Principal {
  tenantId: string | null;
  userId?: string;
  apiKeyId?: string;
  roles: string[];
  scopes: string[];
  permissions: string[];
  /** The member's groups in its tenant, as of its token: what knowledge-base grants to groups are matched against. */
  groups?: string[];
  /** Where the tenant's data lives: rows in the shared schemas, or schemas of its own. */
  isolation: TenantIsolation;
  /** The tenant's plan, which sets its quotas; absent for an anonymous caller. */
  plan?: Plan;
}

export const TENANT_ISOLATIONS = ['SHARED', 'DEDICATED'] as const;
export type TenantIsolation = (typeof TENANT_ISOLATIONS)[number];

export const ANONYMOUS: Principal = Object.freeze({
  tenantId: null,
  roles: [],
  scopes: [],
  permissions: [],
  isolation: 'SHARED',
}) as Principal;

/** The OAuth2 grant type of local sign-in by tenant slug and email (tenancy's issuer, when AUTH_DEV_LOGIN is on). */
export const DEV_LOGIN_GRANT = 'urn:jarvis:params:oauth:grant-type:dev-login';

/** Only asymmetric algorithms: an HS256 token "signed" with a public key, or alg none, never verifies. */
export const ASYMMETRIC_JWT_ALGORITHMS = ['ES256', 'ES384', 'RS256', 'RS384', 'RS512', 'PS256', 'EdDSA'];

/** RFC 8693 token exchange: how an external issuer's token is traded for a Jarvis one. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';

/** API keys start with this, so the gateway can tell one from a JWT in an Authorization header. */
export const API_KEY_PREFIX = 'jvk_';

/** The header carrying the signed principal from the gateway to subgraphs. */
export const PRINCIPAL_HEADER = 'x-jarvis-principal';

const ISSUER = 'jarvis-gateway';
const AUDIENCE = 'jarvis-subgraphs';
const LIFETIME_SECONDS = 60;

const principalSchema = z.object({
  tenantId: z.uuid().nullable(),
  userId: z.uuid().optional(),
  apiKeyId: z.uuid().optional(),
  roles: z.array(z.string()),
  scopes: z.array(z.string()),
  permissions: z.array(z.string()),
  groups: z.array(z.uuid()).optional(),
  isolation: z.enum(TENANT_ISOLATIONS),
  plan: z.enum(PLANS).optional(),
});

export class InvalidPrincipalError extends Error {
  override name = 'InvalidPrincipalError';
}

/**
 * Signs and verifies the principal as a short-lived HS256 JWT under a secret shared by the gateway and the
 * subgraphs, so a subgraph reached directly — `_entities` included — answers nobody else.
 */
export function principalSigner(secret: string) {
  const key = new TextEncoder().encode(secret);
  return {
    sign: (principal: Principal): Promise<string> =>
      new SignJWT({ principal })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setIssuedAt()
        .setExpirationTime(`${LIFETIME_SECONDS}s`)
        .sign(key),

    async verify(token: string | undefined): Promise<Principal> {
      if (!token) throw new InvalidPrincipalError('missing principal');
      try {
        const { payload } = await jwtVerify(token, key, { algorithms: ['HS256'], issuer: ISSUER, audience: AUDIENCE });
        return principalSchema.parse(payload.principal) as Principal;
      } catch (error) {
        throw new InvalidPrincipalError(`invalid principal: ${(error as Error).message}`);
      }
    },
  };
}

export type PrincipalSigner = ReturnType<typeof principalSigner>;
