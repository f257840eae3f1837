import { randomUUID } from 'node:crypto';
import formBody from '@fastify/formbody';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { SignJWT } from 'jose';
import { DEV_LOGIN_GRANT, type Config, type Database } from '@jarvis/platform';
import { TenancyService } from '../tenants/service.ts';
import { SigningKeys } from './keys.ts';
import { RefreshTokens, type RefreshGrant } from './refresh.ts';


type OAuthError = 'invalid_request' | 'invalid_grant' | 'unsupported_grant_type';

/** RFC 6749 §5.2: a 400 with an error code a client can act on, and no caching. */
function refuse(reply: FastifyReply, error: OAuthError, description: string) {
  return reply.code(400).header('cache-control', 'no-store').send({ error, error_description: description });
}

/**
 * The tenancy subgraph as an OAuth2 authorization server: `/.well-known/jwks.json` publishes its keys and
 * `/oauth/token` issues short ES256 access tokens (`sub` user, `tid` tenant) that the gateway verifies.
 * Grants: the dev-login grant (a member's email and tenant slug, no secret), only where AUTH_DEV_LOGIN turns
 * it on, and refresh_token (rotating). Client credentials come with service accounts.
 */
export function registerIssuer(app: FastifyInstance, db: Database, config: Config) {
  const keys = new SigningKeys(db, config.SIGNING_KEY_ROTATION_HOURS * 3_600_000, config.ACCESS_TOKEN_TTL_SECONDS * 1_000);
  const refreshTokens = new RefreshTokens(db, config.REFRESH_TOKEN_TTL_HOURS * 3_600_000);

  app.get('/.well-known/jwks.json', async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=300');
    return keys.jwks();
  });

  async function accessToken({ tenantId, userId }: RefreshGrant): Promise<string> {
    const key = await keys.signingKey();
    const issuedAt = Math.floor(Date.now() / 1000);
    return new SignJWT({ tid: tenantId, roles: [], scope: '' })
      .setProtectedHeader({ alg: key.algorithm, kid: key.kid, typ: 'at+jwt' })
      .setIssuer(config.TOKEN_ISSUER)
      .setAudience(config.TOKEN_AUDIENCE)
      .setSubject(userId)
      .setJti(randomUUID())
      .setIssuedAt(issuedAt)
      .setExpirationTime(issuedAt + config.ACCESS_TOKEN_TTL_SECONDS)
      .sign(key.privateKey);
  }

  async function tokenResponse(reply: FastifyReply, grant: RefreshGrant, refreshToken: string) {
    reply.header('cache-control', 'no-store');
    return {
      access_token: await accessToken(grant),
      token_type: 'Bearer',
      expires_in: config.ACCESS_TOKEN_TTL_SECONDS,
      refresh_token: refreshToken,
    };
  }

  app.register(async (oauth) => {
    await oauth.register(formBody);
    oauth.post<{ Body: Record<string, string | undefined> }>('/oauth/token', async (request, reply) => {
      const { grant_type: grantType, tenant, email, refresh_token: presented } = request.body ?? {};

      if (grantType === 'refresh_token') {
        if (!presented) return refuse(reply, 'invalid_request', 'refresh_token is required');
        const redeemed = await refreshTokens.redeem(presented);
        if (!redeemed) return refuse(reply, 'invalid_grant', 'the refresh token is unknown, expired, revoked or used');
        return tokenResponse(reply, redeemed.grant, redeemed.refreshToken);
      }

      if (grantType !== DEV_LOGIN_GRANT || !config.AUTH_DEV_LOGIN) {
        return refuse(reply, 'unsupported_grant_type', `grant_type ${grantType ?? '(missing)'} is not enabled`);
      }
      if (!tenant || !email) return refuse(reply, 'invalid_request', 'tenant and email are required');
      const user = await new TenancyService(db).member(tenant, email);
      if (!user) return refuse(reply, 'invalid_grant', 'no such member of that tenant');
      const grant = { tenantId: user.tenantId, userId: user.id };
      return tokenResponse(reply, grant, await refreshTokens.issue(grant));
    });
  });
}
