import { randomUUID } from 'node:crypto';
import { createRemoteJWKSet, customFetch, decodeJwt, jwtVerify, type JWTPayload } from 'jose';
import type { Config } from '@jarvis/platform/config';
import { ASYMMETRIC_JWT_ALGORITHMS, requireTenant, type Principal } from '@jarvis/platform/contracts';
import { isUniqueViolation, type Database } from '@jarvis/platform/db';
import { badUserInput, conflict, notFound } from '@jarvis/platform/errors';
import type { Logger } from '@jarvis/platform/logger';
import { OutboundError, OutboundGuard } from '@jarvis/platform/outbound';
import { parseInput } from '@jarvis/platform/subgraph';
import { z } from 'zod';
import type { TrustedIssuerInput } from '../generated/schema-types.ts';
import { requireHeld, requireLowerable } from '../access/escalation.ts';
import { permissionsOfRole } from '../access/roles.ts';
import * as users from '../tenants/store.ts';
import * as store from './store.ts';
import type { TrustedIssuer } from './store.ts';

const claimName = z.string().trim().min(1).max(100);

const issuerInput = z.object({
  issuer: z.string().trim().min(1).max(500),
  jwksUrl: z.url(),
  audience: z.string().trim().min(1).max(500),
  emailClaim: claimName.default('email'),
  rolesClaim: claimName.nullish(),
  roleMapping: z.array(z.object({ value: z.string().min(1), role: z.string() })).default([]),
  provisionUsers: z.boolean().default(false),
});

/** A JWKS is a few public keys: a larger answer is not one. */
const JWKS_MAX_BYTES = 256 * 1024;
const JWKS_TIMEOUT_MS = 5_000;

/** What a tenancy server keeps for reaching issuers' JWKS; opened once per server, closed with it. */
export interface IssuerResources {
  jwks: OutboundGuard;
  close(): Promise<void>;
}

/** How a tenancy server reaches issuers' JWKS: through the guard, with refusals in its log. */
export interface JwksFetching {
  guard: OutboundGuard;
  log: Logger;
}

/**
 * The guard for the JWKS URLs tenants set: https (http too with TRUSTED_ISSUER_ALLOW_HTTP), public addresses
 * unless OUTBOUND_ALLOWED_HOSTS allows more, 256 KiB within 5 s.
 */
export async function openIssuerResources({ config }: { config: Config }): Promise<IssuerResources> {
  const jwks = new OutboundGuard({
    allowHttp: config.TRUSTED_ISSUER_ALLOW_HTTP,
    allowedHosts: config.OUTBOUND_ALLOWED_HOSTS,
    maxResponseBytes: JWKS_MAX_BYTES,
    timeoutMs: JWKS_TIMEOUT_MS,
  });
  return { jwks, close: () => jwks.close() };
}

/** The external OpenID Connect issuers the caller's tenant trusts, managed by its admins. */
export class IssuerService {
  constructor(
    private readonly db: Database,
    private readonly principal: Principal,
    private readonly jwks: OutboundGuard,
  ) {}

  list(tenantId: string): Promise<TrustedIssuer[]> {
    return this.db.withTenant(tenantId, (tx) => store.trustedIssuers(tx));
  }

  async add(given: TrustedIssuerInput): Promise<TrustedIssuer> {
    const tenantId = requireTenant(this.principal);
    const input = parseInput(issuerInput, given);
    await this.checkJwksUrl(input.jwksUrl);
    try {
      return await this.db.withTenant(tenantId, async (tx) => {
        for (const { role } of input.roleMapping) {
          requireHeld(this.principal, { permissions: await permissionsOfRole(tx, role) }, `role "${role}" grants what you do not hold`);
        }
        const roleMapping = Object.fromEntries(input.roleMapping.map(({ value, role }) => [value, role]));
        return store.insertTrustedIssuer(tx, { id: randomUUID(), tenantId, ...input, rolesClaim: input.rolesClaim ?? null, roleMapping });
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict('that issuer and audience are trusted already', 'audience');
      throw error;
    }
  }

  /** Where the keys will be fetched from must be allowed now; it is checked again at every fetch. */
  private async checkJwksUrl(url: string): Promise<void> {
    try {
      await this.jwks.check(url);
    } catch (error) {
      if (error instanceof OutboundError) throw badUserInput(`jwksUrl ${error.message}`, 'jwksUrl');
      throw error;
    }
  }

  async remove(id: string): Promise<boolean> {
    const tenantId = requireTenant(this.principal);
    parseInput(z.object({ id: z.uuid('must be an id') }), { id });
    return this.db.withTenant(tenantId, async (tx) => {
      const [trusted] = (await store.trustedIssuers(tx)).filter((t) => t.id === id);
      if (!trusted) throw notFound('no such trusted issuer');
      // Whoever signs in through it loses the roles it maps: nobody takes away what they do not hold.
      const mapped = await Promise.all(Object.values(trusted.roleMapping).map((role) => permissionsOfRole(tx, role).catch(() => [])));
      await requireLowerable(this.principal, tx, mapped.flat(), []);
      return store.deleteTrustedIssuer(tx, id);
    });
  }
}

/** A member signed in through an external issuer, with the roles its claims map to. */
export interface ExternalSignIn {
  tenantId: string;
  userId: string;
  mappedRoles: string[];
}

/**
 * Verifies a token of an external issuer that some tenant trusts (its JWKS, audience, expiry, asymmetric
 * algorithms) and finds — or, where the tenant allows, provisions — the member it names.
 */
export class ExternalIssuers {
  private readonly keySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

  constructor(
    private readonly db: Database,
    private readonly fetching: JwksFetching,
  ) {}

  async signIn(token: string): Promise<ExternalSignIn | undefined> {
    const issuer = unverifiedIssuer(token);
    if (!issuer) return undefined;
    const tenants = await this.db.withoutTenant((tx) => store.tenantsTrusting(tx, issuer));
    for (const tenantId of tenants) {
      const candidates = (await this.db.withTenant(tenantId, (tx) => store.trustedIssuers(tx))).filter((t) => t.issuer === issuer);
      for (const trusted of candidates) {
        const claims = await this.verify(token, trusted);
        if (claims) return this.member(trusted, claims);
      }
    }
    return undefined;
  }

  private async verify(token: string, trusted: TrustedIssuer): Promise<JWTPayload | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.keySet(trusted.jwksUrl), {
        issuer: trusted.issuer,
        audience: trusted.audience,
        algorithms: ASYMMETRIC_JWT_ALGORITHMS,
        requiredClaims: ['exp'],
        clockTolerance: 5,
      });
      return payload;
    } catch (error) {
      if (error instanceof OutboundError) {
        this.fetching.log.warn({ tenantId: trusted.tenantId, issuer: trusted.issuer, jwksUrl: trusted.jwksUrl, reason: error.message }, 'JWKS not fetched');
      }
      return undefined;
    }
  }

  private keySet(url: string) {
    let keys = this.keySets.get(url);
    if (!keys) {
      keys = createRemoteJWKSet(new URL(url), {
        cooldownDuration: 30_000,
        // the guard's own, shorter timeout gives the reason
        timeoutDuration: 2 * JWKS_TIMEOUT_MS,
        [customFetch]: (href, init) => this.fetching.guard.fetch(href, init),
      });
      this.keySets.set(url, keys);
    }
    return keys;
  }

  private member(trusted: TrustedIssuer, claims: JWTPayload): Promise<ExternalSignIn | undefined> {
    const email = claims[trusted.emailClaim];
    if (typeof email !== 'string' || !z.email().safeParse(email).success) return Promise.resolve(undefined);
    const held = trusted.rolesClaim ? claims[trusted.rolesClaim] : undefined;
    const values = Array.isArray(held) ? held : typeof held === 'string' ? held.split(' ') : [];
    const mappedRoles = [...new Set(values.flatMap((value) => trusted.roleMapping[String(value)] ?? []))];
    return this.db.withTenant(trusted.tenantId, async (tx) => {
      let user = await users.userByEmail(tx, email.toLowerCase());
      if (!user && trusted.provisionUsers) {
        const name = typeof claims.name === 'string' && claims.name.trim() ? claims.name.trim().slice(0, 200) : email;
        user = await users.insertUser(tx, { id: randomUUID(), tenantId: trusted.tenantId, email: email.toLowerCase(), name });
      }
      return user ? { tenantId: trusted.tenantId, userId: user.id, mappedRoles } : undefined;
    });
  }
}

/** The `iss` a token claims, when it could name an issuer at all: a short string of visible characters. */
function unverifiedIssuer(token: string): string | undefined {
  try {
    const { iss } = decodeJwt(token);
    return typeof iss === 'string' && ISSUER_NAME.test(iss) ? iss : undefined;
  } catch {
    return undefined;
  }
}

const ISSUER_NAME = /^[\x21-\x7e]{1,500}$/;
