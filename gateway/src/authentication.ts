import { createHash, timingSafeEqual } from 'node:crypto';
import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTPayload } from 'jose';
import { LRUCache } from 'lru-cache';
import { requestToken } from '@jarvis/platform/client';
import { ANONYMOUS, API_KEY_PREFIX, ASYMMETRIC_JWT_ALGORITHMS, isPlan, isReservedScope, OPERATOR_SCOPE, TOKEN_EXCHANGE_GRANT, type Principal } from '@jarvis/platform/contracts';
import { AppError, unauthenticated } from '@jarvis/platform/errors';
import { isUuid } from '@jarvis/platform/ids';

/** An issuer whose tokens the gateway accepts: its `iss`, where its public keys are, and the audience it must name. */
export interface TrustedIssuer {
  issuer: string;
  jwksUrl: string;
  audience: string;
}

export interface AuthenticatorOptions {
  clockToleranceSeconds?: number;
  jwksCooldownMs?: number;
  jwksMaxAgeMs?: number;
  /**
   * The token endpoint that trades an API key (client_credentials) or a token of another issuer (RFC 8693) for
   * an access token of a trusted issuer; without one, both are refused.
   */
  tokenExchangeUrl?: string | undefined;
  tokenExchangeCacheMs?: number;
  /** The deployment's operator credential (OPERATOR_TOKEN): a bearer token of its own, no tenant. */
  operatorToken?: string | undefined;
}

/** The operator: no tenant, no permission in any; only the scope operator fields require. */
export const OPERATOR: Principal = Object.freeze({ ...ANONYMOUS, scopes: [OPERATOR_SCOPE] }) as Principal;

const BEARER_JWT = /^Bearer ([A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]+)$/;
const BEARER_API_KEY = new RegExp(`^Bearer (${API_KEY_PREFIX}[0-9a-f-]{36}\\.[A-Za-z0-9_-]+)$`);

/**
 * Turns an Authorization header into a principal: none is anonymous; a bearer JWT from a trusted issuer,
 * verified against its JWKS (cached, refetched for an unknown key id), yields the caller; a bearer API key, or
 * a JWT of another issuer (one a tenant trusts), is traded at the token endpoint for a Jarvis token; anything
 * else is UNAUTHENTICATED.
 */
export function createAuthenticator(issuers: TrustedIssuer[], options: AuthenticatorOptions = {}) {
  const jwts = jwtVerifier(issuers, options);
  const trusted = new Set(issuers.map((issuer) => issuer.issuer));
  const exchange = options.tokenExchangeUrl
    ? tokenExchange(options.tokenExchangeUrl, (token) => jwts.verify(token), options.tokenExchangeCacheMs ?? 30_000)
    : undefined;

  const isOperator = operatorCheck(options.operatorToken);

  return async function authenticate(authorization: string | undefined): Promise<Principal> {
    if (!authorization) return ANONYMOUS;
    if (isOperator(authorization)) return OPERATOR;
    const key = BEARER_API_KEY.exec(authorization)?.[1];
    if (key) {
      if (!exchange) throw unauthenticated('this gateway accepts no API keys');
      return exchange(key, { grant_type: 'client_credentials', client_secret: key }, 'the API key is unknown, revoked or expired');
    }
    const token = BEARER_JWT.exec(authorization)?.[1];
    if (!token) throw unauthenticated('Authorization must be "Bearer <JWT or API key>"');
    const known = jwts.verified(token);
    if (known) return known;
    const { iss, exp } = unverifiedClaims(token);
    if ((iss !== undefined && trusted.has(iss)) || !exchange) return jwts.verify(token, iss);
    const form = { grant_type: TOKEN_EXCHANGE_GRANT, subject_token: token, subject_token_type: 'urn:ietf:params:oauth:token-type:jwt' };
    return exchange(token, form, 'the token is not from a trusted issuer, or not valid', exp);
  };
}

/** Compares in constant time, so the answer's timing tells nothing of the operator's credential. */
function operatorCheck(token: string | undefined): (authorization: string) => boolean {
  if (!token) return () => false;
  const expected = createHash('sha256').update(`Bearer ${token}`).digest();
  return (authorization) => timingSafeEqual(createHash('sha256').update(authorization).digest(), expected);
}

function jwtVerifier(issuers: TrustedIssuer[], { clockToleranceSeconds = 5, jwksCooldownMs = 30_000, jwksMaxAgeMs = 600_000 }: AuthenticatorOptions) {
  // The cooldown bounds JWKS fetches that tokens with made-up key ids can cause; issuers publish a new key
  // before they sign with it, so it is picked up within the cooldown or the cache's age.
  const keySets = new Map(
    issuers.map((trusted) => [
      trusted.issuer,
      {
        trusted,
        keys: createRemoteJWKSet(new URL(trusted.jwksUrl), { cooldownDuration: jwksCooldownMs, cacheMaxAge: jwksMaxAgeMs }),
      },
    ]),
  );

  // A verified token is worth keeping until it expires: verifying an ES256 signature is most of the cost of
  // authenticating a request.
  const verified = new LRUCache<string, Principal>({ max: 10_000 });

  return {
    /** The principal of a token verified before and not expired since, without decoding it again. */
    verified: (token: string): Principal | undefined => verified.get(token),
    async verify(token: string, issuer = unverifiedClaims(token).iss): Promise<Principal> {
      const known = verified.get(token);
      if (known) return known;
      const { principal, expiresAt } = await verifySignature(token, issuer);
      verified.set(token, principal, { ttl: Math.max(1, expiresAt - Date.now()) });
      return principal;
    },
  };

  async function verifySignature(token: string, issuer: string | undefined): Promise<{ principal: Principal; expiresAt: number }> {
    const keySet = issuer === undefined ? undefined : keySets.get(issuer);
    if (!keySet) throw unauthenticated('the token is not from a trusted issuer');
    try {
      const { payload } = await jwtVerify(token, keySet.keys, {
        issuer: keySet.trusted.issuer,
        audience: keySet.trusted.audience,
        algorithms: ASYMMETRIC_JWT_ALGORITHMS,
        requiredClaims: ['exp', 'sub', 'tid'],
        clockTolerance: clockToleranceSeconds,
      });
      return { principal: principalFromClaims(payload), expiresAt: payload.exp! * 1000 };
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw unauthenticated(`invalid token: ${(error as Error).message}`);
    }
  }
}

/**
 * API keys and tokens of tenants' own issuers are the token endpoint's business (keys hashed, scoped,
 * expiring, revocable; issuers trusted per tenant): the gateway trades one for a Jarvis access token and reuses
 * the result for `cacheMs` at most — never past the traded credential's own expiry — so a revoked key stops
 * working within that time. Cached under a hash, so the cache holds no usable secret.
 */
function tokenExchange(tokenUrl: string, verify: (token: string) => Promise<Principal>, cacheMs: number) {
  const traded = new LRUCache<string, Promise<Principal>>({ max: 10_000 });

  async function trade(form: Record<string, string>, refusal: string): Promise<Principal> {
    const { status, body } = await requestToken(tokenUrl, form);
    if (status === 400 || status === 401) throw unauthenticated(refusal);
    if (status !== 200) throw new Error(`the token endpoint answered ${status}`);
    return verify(body.access_token as string);
  }

  return function exchange(credential: string, form: Record<string, string>, refusal: string, expiresAtSeconds?: number): Promise<Principal> {
    const id = createHash('sha256').update(credential).digest('base64url');
    const cached = traded.get(id);
    if (cached) return cached;
    const principal = trade(form, refusal);
    const ttl = Math.min(cacheMs, expiresAtSeconds === undefined ? cacheMs : expiresAtSeconds * 1000 - Date.now());
    if (ttl > 0) {
      traded.set(id, principal, { ttl });
      principal.catch(() => traded.delete(id));
    }
    return principal;
  };
}

function unverifiedClaims(token: string): { iss?: string | undefined; exp?: number | undefined } {
  try {
    return decodeJwt(token);
  } catch {
    throw unauthenticated('the token is not a JWT');
  }
}

const strings = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];

/**
 * Jarvis access tokens: `tid` the tenant, `sub` the user — or, with `akid`, the service account whose API key
 * `akid` is — `roles`, `permissions` and `groups` arrays, `scope` space-separated (RFC 8693), `iso` the tenant's isolation,
 * `plan` its plan.
 */
function principalFromClaims(claims: JWTPayload): Principal {
  const { sub, tid, akid, roles, permissions, groups, scope, iso, plan } = claims as JWTPayload & Record<string, unknown>;
  if (typeof tid !== 'string' || !isUuid(tid)) throw unauthenticated('the token names no valid tenant');
  if (typeof sub !== 'string' || !isUuid(sub)) throw unauthenticated('the token names no valid subject');
  if (akid !== undefined && (typeof akid !== 'string' || !isUuid(akid))) throw unauthenticated('the token names no valid API key');
  return {
    tenantId: tid,
    ...(akid ? { apiKeyId: akid } : { userId: sub }),
    roles: strings(roles),
    // Jarvis's own scopes (the operator's, the meter's) never come from a token, whoever signed it.
    scopes: typeof scope === 'string' ? scope.split(' ').filter((name) => name && !isReservedScope(name)) : [],
    permissions: strings(permissions),
    ...(akid ? {} : { groups: strings(groups).filter(isUuid) }),
    isolation: iso === 'DEDICATED' ? 'DEDICATED' : 'SHARED',
    ...(isPlan(plan) ? { plan } : {}),
  };
}
