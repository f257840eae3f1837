import { randomUUID } from 'node:crypto';
import formBody from '@fastify/formbody';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SignJWT } from 'jose';
import { DEV_LOGIN_GRANT, TOKEN_EXCHANGE_GRANT, type Config, type Database, type Plan, type TenantIsolation } from '@jarvis/platform';
import { Credentials } from '../access/service.ts';
import { ExternalIssuers } from '../issuers/service.ts';
import { TenancyService } from '../tenants/service.ts';
import { keyWrapping } from './key-wrapping.ts';
import { SigningKeys } from './keys.ts';
import { RefreshTokens, type RefreshGrant } from './refresh.ts';

type OAuthError = 'invalid_request' | 'invalid_grant' | 'invalid_client' | 'unsupported_grant_type';

/** RFC 6749 §5.2: an error code a client can act on (401 for a failed client authentication), and no caching. */
function refuse(reply: FastifyReply, error: OAuthError, description: string) {
  return reply
    .code(error === 'invalid_client' ? 401 : 400)
    .header('cache-control', 'no-store')
    .send({ error, error_description: description });
}

/** Who an access token speaks for: a member (`sub` the user) or a service account using one of its API keys. */
interface TokenSubject {
  tenantId: string;
  subject: string;
  apiKeyId?: string;
  roles: string[];
  permissions: string[];
  /** A member's groups; a service account has none. */
  groups?: string[];
  scopes: string[];
  isolation: TenantIsolation;
  plan: Plan;
}

type Form = Record<string, string | undefined>;

const EXCHANGEABLE = new Set(['urn:ietf:params:oauth:token-type:jwt', 'urn:ietf:params:oauth:token-type:id_token', 'urn:ietf:params:oauth:token-type:access_token']);

/**
 * The tenancy subgraph as an OAuth2 authorization server: `/.well-known/jwks.json` publishes its keys and
 * `/oauth/token` issues short ES256 access tokens that the gateway verifies, carrying the tenant (`tid`), the
 * roles and permissions the subject holds, its scopes, the tenant's isolation (`iso`) and plan. Grants:
 * client_credentials (a service account's API key), token exchange (a token of an external issuer a tenant
 * trusts), refresh_token (rotating), and the dev-login grant (a
 * member's email and tenant slug, no secret) only where AUTH_DEV_LOGIN turns it on.
 */
export function registerIssuer(app: FastifyInstance, db: Database, config: Config) {
  const wrapping = config.SIGNING_KEY_SECRET ? keyWrapping(config.SIGNING_KEY_SECRET) : undefined;
  const keys = new SigningKeys(db, config.SIGNING_KEY_ROTATION_HOURS * 3_600_000, config.ACCESS_TOKEN_TTL_SECONDS * 1_000, wrapping);
  const refreshTokens = new RefreshTokens(db, config.REFRESH_TOKEN_TTL_HOURS * 3_600_000);
  const credentials = new Credentials(db);
  const externalIssuers = new ExternalIssuers(db);

  app.get('/.well-known/jwks.json', async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=300');
    return keys.jwks();
  });

  async function accessToken(subject: TokenSubject): Promise<string> {
    const key = await keys.signingKey();
    const issuedAt = Math.floor(Date.now() / 1000);
    const { tenantId, apiKeyId, roles, permissions, groups, scopes, isolation, plan } = subject;
    return new SignJWT({ tid: tenantId, akid: apiKeyId, roles, permissions, groups, scope: scopes.join(' '), iso: isolation, plan })
      .setProtectedHeader({ alg: key.algorithm, kid: key.kid, typ: 'at+jwt' })
      .setIssuer(config.TOKEN_ISSUER)
      .setAudience(config.TOKEN_AUDIENCE)
      .setSubject(subject.subject)
      .setJti(randomUUID())
      .setIssuedAt(issuedAt)
      .setExpirationTime(issuedAt + config.ACCESS_TOKEN_TTL_SECONDS)
      .sign(key.privateKey);
  }

  async function memberTokens(reply: FastifyReply, grant: RefreshGrant, refreshToken?: string, mappedRoles: string[] = []) {
    const claims = await credentials.userClaims(grant.tenantId, grant.userId, mappedRoles);
    if (!claims) return refuse(reply, 'invalid_grant', 'the tenant no longer exists');
    const subject = { tenantId: grant.tenantId, subject: grant.userId, scopes: [], ...claims };
    return tokenResponse(reply, subject, refreshToken);
  }

  async function tokenResponse(reply: FastifyReply, subject: TokenSubject, refreshToken?: string) {
    reply.header('cache-control', 'no-store');
    return {
      access_token: await accessToken(subject),
      // RFC 8693 asks for it in exchange answers; it is true of every answer here
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      token_type: 'Bearer',
      expires_in: config.ACCESS_TOKEN_TTL_SECONDS,
      ...(refreshToken ? { refresh_token: refreshToken } : {}),
      ...(subject.scopes.length ? { scope: subject.scopes.join(' ') } : {}),
    };
  }

  async function clientCredentials(request: FastifyRequest<{ Body: Form }>, reply: FastifyReply) {
    const client = clientAuthentication(request);
    if (!client) return refuse(reply, 'invalid_client', 'authenticate with client_id and client_secret (an API key)');
    const key = await credentials.authenticateApiKey(client.secret);
    if (!key || (client.id && client.id !== key.apiKey.id)) {
      return refuse(reply, 'invalid_client', 'the API key is unknown, revoked or expired');
    }
    const { apiKey, roles, permissions, isolation, plan } = key;
    const subject = { tenantId: apiKey.tenantId, subject: apiKey.serviceAccountId, apiKeyId: apiKey.id, roles, permissions, isolation, plan };
    return tokenResponse(reply, { ...subject, scopes: apiKey.scopes });
  }

  async function refresh(presented: string | undefined, reply: FastifyReply) {
    if (!presented) return refuse(reply, 'invalid_request', 'refresh_token is required');
    const redeemed = await refreshTokens.redeem(presented);
    if (!redeemed) return refuse(reply, 'invalid_grant', 'the refresh token is unknown, expired, revoked or used');
    return memberTokens(reply, redeemed.grant, redeemed.refreshToken);
  }

  /** RFC 8693: a token of an external issuer a tenant trusts, for a Jarvis access token of its member. */
  async function exchange({ subject_token: token, subject_token_type: type }: Form, reply: FastifyReply) {
    if (!token || !type || !EXCHANGEABLE.has(type)) {
      return refuse(reply, 'invalid_request', 'subject_token and a JWT subject_token_type are required');
    }
    const signedIn = await externalIssuers.signIn(token);
    if (!signedIn) return refuse(reply, 'invalid_grant', 'the token is not from an issuer a tenant trusts, not valid, or names no member');
    return memberTokens(reply, { tenantId: signedIn.tenantId, userId: signedIn.userId }, undefined, signedIn.mappedRoles);
  }

  async function devLogin({ tenant, email }: Form, reply: FastifyReply) {
    if (!tenant || !email) return refuse(reply, 'invalid_request', 'tenant and email are required');
    const user = await new TenancyService(db).member(tenant, email);
    if (!user) return refuse(reply, 'invalid_grant', 'no such member of that tenant');
    const grant = { tenantId: user.tenantId, userId: user.id };
    return memberTokens(reply, grant, await refreshTokens.issue(grant));
  }

  app.register(async (oauth) => {
    await oauth.register(formBody);
    oauth.post<{ Body: Form }>('/oauth/token', async (request, reply) => {
      const form = request.body ?? {};
      switch (form.grant_type) {
        case 'client_credentials':
          return clientCredentials(request, reply);
        case 'refresh_token':
          return refresh(form.refresh_token, reply);
        case TOKEN_EXCHANGE_GRANT:
          return exchange(form, reply);
        case DEV_LOGIN_GRANT:
          if (config.AUTH_DEV_LOGIN) return devLogin(form, reply);
      }
      return refuse(reply, 'unsupported_grant_type', `grant_type ${form.grant_type ?? '(missing)'} is not enabled`);
    });
  });
}

/** RFC 6749 §2.3.1: HTTP Basic, or client_id and client_secret in the form. The id is optional for API keys. */
function clientAuthentication(request: FastifyRequest<{ Body: Form }>): { id?: string; secret: string } | undefined {
  const basic = /^Basic (.+)$/i.exec(request.headers.authorization ?? '')?.[1];
  if (basic) {
    const decoded = Buffer.from(basic, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return undefined;
    const id = decodeURIComponent(decoded.slice(0, colon));
    return { id: id || undefined, secret: decodeURIComponent(decoded.slice(colon + 1)) };
  }
  const { client_id: id, client_secret: secret } = request.body ?? {};
  return secret ? { id: id || undefined, secret } : undefined;
}
