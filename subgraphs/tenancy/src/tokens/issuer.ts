import { randomUUID } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { SignJWT } from 'jose';
import type { Config } from '@jarvis/platform/config';
import { DEV_LOGIN_GRANT, isScope, TOKEN_EXCHANGE_GRANT, type Plan, type TenantIsolation } from '@jarvis/platform/contracts';
import type { Database } from '@jarvis/platform/db';
import { Credentials } from '../access/service.ts';
import type { ExternalIssuers } from '../issuers/service.ts';
import { TenancyService } from '../tenants/service.ts';
import { keyWrapping } from './key-wrapping.ts';
import { SigningKeys } from './keys.ts';
import { RefreshTokens, type RefreshGrant } from './refresh.ts';

type OAuthError = 'invalid_request' | 'invalid_grant' | 'invalid_client' | 'unsupported_grant_type';

/** RFC 6749 §5.2: an error code a client can act on (401 for a failed client authentication), and no caching. */
function refuse(reply: FastifyReply, error: OAuthError, description: string) {
  if (error === 'invalid_client') reply.code(401).header('www-authenticate', 'Basic realm="jarvis"');
  else reply.code(400);
  return reply.header('cache-control', 'no-store').send({ error, error_description: description });
}

/** A whole token request; the longest value a client has reason to send is an external issuer's token. */
const MAX_REQUEST_BYTES = 64 * 1024;
const MAX_VALUE_LENGTH = 16 * 1024;
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;
/** What the body of a request of any other content type than a form becomes. */
const NOT_A_FORM = Symbol('not a form');

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

type Form = Readonly<Record<string, string | undefined>>;

/**
 * The token request's parameters (RFC 6749 §3.2, Appendix B), or why it is not one: a form of single-valued
 * parameters, each of bounded length and without control characters.
 */
function readForm(body: unknown): { form: Form } | { invalid: string } {
  if (typeof body !== 'string' || !body) return { invalid: 'send the parameters as an application/x-www-form-urlencoded body' };
  const params = new Map<string, string>();
  for (const [name, value] of new URLSearchParams(body)) {
    if (params.has(name)) return { invalid: `${JSON.stringify(name.slice(0, 40))} is given more than once` };
    if (value.length > MAX_VALUE_LENGTH) return { invalid: `${JSON.stringify(name.slice(0, 40))} is longer than ${MAX_VALUE_LENGTH} characters` };
    if (CONTROL_CHARACTERS.test(value)) return { invalid: `${JSON.stringify(name.slice(0, 40))} holds control characters` };
    params.set(name, value);
  }
  return { form: Object.fromEntries(params) };
}

const EXCHANGEABLE = new Set(['urn:ietf:params:oauth:token-type:jwt', 'urn:ietf:params:oauth:token-type:id_token', 'urn:ietf:params:oauth:token-type:access_token']);

/**
 * The tenancy subgraph as an OAuth2 authorization server: `/.well-known/jwks.json` publishes its keys and
 * `/oauth/token` issues short ES256 access tokens that the gateway verifies, carrying the tenant (`tid`), the
 * roles and permissions the subject holds, its scopes, the tenant's isolation (`iso`) and plan. Grants:
 * client_credentials (a service account's API key), token exchange (a token of an external issuer a tenant
 * trusts), refresh_token (rotating), and the dev-login grant (a
 * member's email and tenant slug, no secret) only where AUTH_DEV_LOGIN turns it on.
 */
export function registerIssuer(app: FastifyInstance, db: Database, config: Config, externalIssuers: ExternalIssuers) {
  const wrapping = config.SIGNING_KEY_SECRET ? keyWrapping(config.SIGNING_KEY_SECRET) : undefined;
  const keys = new SigningKeys(db, config.SIGNING_KEY_ROTATION_HOURS * 3_600_000, config.ACCESS_TOKEN_TTL_SECONDS * 1_000, wrapping);
  const refreshTokens = new RefreshTokens(db, config.REFRESH_TOKEN_TTL_HOURS * 3_600_000);
  const credentials = new Credentials(db);

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

  async function clientCredentials(form: Form, authorization: string | undefined, reply: FastifyReply) {
    const client = clientAuthentication(form, authorization);
    if ('refused' in client) return refuse(reply, client.refused, client.description);
    const key = await credentials.authenticateApiKey(client.secret);
    if (!key || (client.id && client.id !== key.apiKey.id)) {
      return refuse(reply, 'invalid_client', 'the API key is unknown, revoked or expired');
    }
    const { apiKey, roles, permissions, isolation, plan } = key;
    const subject = { tenantId: apiKey.tenantId, subject: apiKey.serviceAccountId, apiKeyId: apiKey.id, roles, permissions, isolation, plan };
    // Only the catalogue's scopes: a key stored before it existed may carry others, even reserved ones.
    return tokenResponse(reply, { ...subject, scopes: apiKey.scopes.filter(isScope) });
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
    // Only a form is read as text (by readForm); any other body is taken as bytes, within the limit, and refused.
    oauth.removeAllContentTypeParsers();
    oauth.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => done(null, body));
    oauth.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, _body, done) => done(null, NOT_A_FORM));
    oauth.setErrorHandler((error: FastifyError, request, reply) => {
      if (error.statusCode && error.statusCode < 500) {
        return refuse(reply, 'invalid_request', error.statusCode === 413 ? `the request is larger than ${MAX_REQUEST_BYTES} bytes` : 'the request could not be read');
      }
      // Ours to fix, and nothing for the client to read (no SQL, no stack).
      request.log.error({ err: error }, 'the token endpoint failed');
      return reply.code(500).header('cache-control', 'no-store').send({ error: 'server_error', error_description: 'the token could not be issued' });
    });
    oauth.post('/oauth/token', { bodyLimit: MAX_REQUEST_BYTES }, async (request, reply) => {
      const read = readForm(request.body);
      if ('invalid' in read) return refuse(reply, 'invalid_request', read.invalid);
      const { form } = read;
      switch (form.grant_type) {
        case undefined:
          return refuse(reply, 'invalid_request', 'grant_type is required');
        case 'client_credentials':
          return clientCredentials(form, request.headers.authorization, reply);
        case 'refresh_token':
          return refresh(form.refresh_token, reply);
        case TOKEN_EXCHANGE_GRANT:
          return exchange(form, reply);
        case DEV_LOGIN_GRANT:
          if (config.AUTH_DEV_LOGIN) return devLogin(form, reply);
      }
      return refuse(reply, 'unsupported_grant_type', `grant_type ${JSON.stringify(form.grant_type.slice(0, 100))} is not enabled`);
    });
  });
}

type ClientAuthentication = { id?: string; secret: string } | { refused: OAuthError; description: string };

/**
 * RFC 6749 §2.3.1: HTTP Basic (id and secret percent-encoded, then base64), or client_id and client_secret in
 * the form; one of them, not both. The id is optional for API keys.
 */
function clientAuthentication(form: Form, authorization: string | undefined): ClientAuthentication {
  const basic = /^Basic\s+(\S*)\s*$/i.exec(authorization ?? '')?.[1];
  if (basic === undefined) {
    const { client_id: id, client_secret: secret } = form;
    if (!secret) return { refused: 'invalid_client', description: 'authenticate with client_id and client_secret (an API key)' };
    return { id: id || undefined, secret };
  }
  if (form.client_secret !== undefined) return { refused: 'invalid_request', description: 'authenticate one way: HTTP Basic or client_secret, not both' };
  const decoded = strictBase64(basic);
  const colon = decoded?.indexOf(':') ?? -1;
  const id = decoded && colon >= 0 ? percentDecoded(decoded.slice(0, colon)) : undefined;
  const secret = decoded && colon >= 0 ? percentDecoded(decoded.slice(colon + 1)) : undefined;
  if (id === undefined || !secret) return { refused: 'invalid_client', description: 'the Basic credentials are not base64 of percent-encoded "id:secret"' };
  return { id: id || undefined, secret };
}

/** The UTF-8 text that `value` is the base64 of; undefined when it is not exactly that. */
function strictBase64(value: string): string | undefined {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(value)) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(value, 'base64'));
  } catch {
    return undefined;
  }
}

function percentDecoded(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}
