import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTPayload } from 'jose';
import { ANONYMOUS, AppError, isUuid, unauthenticated, type Principal } from '@jarvis/platform';

/** An issuer whose tokens the gateway accepts: its `iss`, where its public keys are, and the audience it must name. */
export interface TrustedIssuer {
  issuer: string;
  jwksUrl: string;
  audience: string;
}

/** Only asymmetric algorithms: an HS256 token "signed" with a public key, or alg none, never verifies. */
const ALGORITHMS = ['ES256', 'ES384', 'RS256', 'RS384', 'RS512', 'PS256', 'EdDSA'];
const BEARER = /^Bearer ([A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]+)$/;

/**
 * Turns an Authorization header into a principal: none is anonymous; a bearer JWT from a trusted issuer,
 * verified against its JWKS (cached, refetched for an unknown key id), yields the caller; anything else
 * is UNAUTHENTICATED.
 */
export function createAuthenticator(
  issuers: TrustedIssuer[],
  { clockToleranceSeconds = 5, jwksCooldownMs = 30_000, jwksMaxAgeMs = 600_000 } = {},
) {
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

  return async function authenticate(authorization: string | undefined): Promise<Principal> {
    if (!authorization) return ANONYMOUS;
    const token = BEARER.exec(authorization)?.[1];
    if (!token) throw unauthenticated('Authorization must be "Bearer <JWT>"');
    const issuer = unverifiedIssuer(token);
    const keySet = issuer === undefined ? undefined : keySets.get(issuer);
    if (!keySet) throw unauthenticated('the token is not from a trusted issuer');
    try {
      const { payload } = await jwtVerify(token, keySet.keys, {
        issuer: keySet.trusted.issuer,
        audience: keySet.trusted.audience,
        algorithms: ALGORITHMS,
        requiredClaims: ['exp', 'sub', 'tid'],
        clockTolerance: clockToleranceSeconds,
      });
      return principalFromClaims(payload);
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw unauthenticated(`invalid token: ${(error as Error).message}`);
    }
  };
}

function unverifiedIssuer(token: string): string | undefined {
  try {
    return decodeJwt(token).iss;
  } catch {
    throw unauthenticated('the token is not a JWT');
  }
}

/** Jarvis access tokens: `sub` the user, `tid` the tenant, `roles` an array, `scope` space-separated (RFC 8693). */
function principalFromClaims(claims: JWTPayload): Principal {
  const { sub, tid, roles, scope } = claims as JWTPayload & { tid?: unknown; roles?: unknown; scope?: unknown };
  if (typeof tid !== 'string' || !isUuid(tid)) throw unauthenticated('the token names no valid tenant');
  if (typeof sub !== 'string' || !isUuid(sub)) throw unauthenticated('the token names no valid subject');
  return {
    tenantId: tid,
    userId: sub,
    roles: Array.isArray(roles) ? roles.filter((role): role is string => typeof role === 'string') : [],
    scopes: typeof scope === 'string' ? scope.split(' ').filter(Boolean) : [],
    permissions: [],
  };
}
