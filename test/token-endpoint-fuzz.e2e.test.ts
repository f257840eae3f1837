/**
 * /oauth/token, at tenancy and through the gateway, answers malformed requests as RFC 6749 §5.2 says: 400
 * `invalid_request` (or 401 `invalid_client` for a client authentication it cannot read), never a 5xx. The
 * endpoint takes one application/x-www-form-urlencoded form with each parameter at most once.
 *
 * TOKEN_FUZZ_SEED=<n> replays the random part; TOKEN_FUZZ_REQUESTS=<n> changes its length.
 */
import assert from 'node:assert/strict';
import { randomInt, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { bearer, devLogin, graphql } from '@jarvis/platform/client';
import { DEV_LOGIN_GRANT, TOKEN_EXCHANGE_GRANT } from '@jarvis/platform/contracts';
import { databaseVariants, seededRandom, type SeededRandom } from '@jarvis/platform/testing';
import { CREATE_TENANT, serviceKey, startTestStack, type TestStack } from './helpers.ts';

const FORM = 'application/x-www-form-urlencoded';
const RFC_6749_ERRORS = new Set(['invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope']);
const FUZZ_REQUESTS = Number(process.env.TOKEN_FUZZ_REQUESTS ?? 300);

interface Malformed {
  body?: string | Buffer;
  /** Sent as given; no content-type header when absent. */
  contentType?: string;
  authorization?: string;
}

async function post(url: string, { body, contentType, authorization }: Malformed) {
  const headers: Record<string, string> = {};
  if (contentType !== undefined) headers['content-type'] = contentType;
  if (authorization !== undefined) headers.authorization = authorization;
  // Bytes, so fetch adds no content type of its own.
  const response = await fetch(url, { method: 'POST', headers, body: body === undefined ? undefined : Buffer.from(body) });
  const text = await response.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, text, error: json?.error, cacheControl: response.headers.get('cache-control') };
}

const basic = (credentials: string) => `Basic ${Buffer.from(credentials).toString('base64')}`;

type Answers = [number, string][];
const INVALID_REQUEST: Answers = [[400, 'invalid_request']];
/** A client authentication that cannot be read: either answer is RFC 6749's. */
const UNREADABLE_CLIENT: Answers = [[401, 'invalid_client'], [400, 'invalid_request']];
const DEV_LOGIN = `grant_type=${encodeURIComponent(DEV_LOGIN_GRANT)}`;
const EXCHANGE = `grant_type=${encodeURIComponent(TOKEN_EXCHANGE_GRANT)}&subject_token_type=urn:ietf:params:oauth:token-type:jwt`;

const form = (body: string): Malformed => ({ contentType: FORM, body });
const json = (body: string): Malformed => ({ contentType: 'application/json', body });
const withBasic = (authorization: string): Malformed => ({ ...form('grant_type=client_credentials'), authorization });

/** Each malformed request, with what it must be answered: [status, error] pairs, any of them. */
const CASES: [string, Malformed, Answers][] = [
  ['refresh_token given twice', form('grant_type=refresh_token&refresh_token=a&refresh_token=b'), INVALID_REQUEST],
  ['grant_type given twice', form('grant_type=refresh_token&grant_type=client_credentials&refresh_token=a'), INVALID_REQUEST],
  ['client_secret given twice', form('grant_type=client_credentials&client_secret=a&client_secret=b'), INVALID_REQUEST],
  ['dev-login email given twice', form(`${DEV_LOGIN}&tenant=t&email=a@x.test&email=b@x.test`), INVALID_REQUEST],
  ['a JSON body', json('{"grant_type":"refresh_token","refresh_token":"a"}'), INVALID_REQUEST],
  ['a JSON body with a number', json('{"grant_type":"refresh_token","refresh_token":123}'), INVALID_REQUEST],
  ['a JSON body with an object', json('{"grant_type":"client_credentials","client_secret":{"a":1}}'), INVALID_REQUEST],
  ['a JSON body with an array', json('{"grant_type":["refresh_token"],"refresh_token":["a","b"]}'), INVALID_REQUEST],
  ['JSON that does not parse', json('{"grant_type":'), INVALID_REQUEST],
  ['a form sent as text/plain', { contentType: 'text/plain', body: 'grant_type=refresh_token&refresh_token=a' }, INVALID_REQUEST],
  [
    'a multipart body',
    { contentType: 'multipart/form-data; boundary=x', body: '--x\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\nrefresh_token\r\n--x--\r\n' },
    INVALID_REQUEST,
  ],
  ['an XML body', { contentType: 'application/xml', body: '<grant_type>refresh_token</grant_type>' }, INVALID_REQUEST],
  ['a content type that does not parse', { contentType: ';;;=', body: 'grant_type=refresh_token' }, INVALID_REQUEST],
  ['a body without a content type', { body: 'grant_type=refresh_token&refresh_token=a' }, INVALID_REQUEST],
  ['an empty form', form(''), INVALID_REQUEST],
  ['no body at all', {}, INVALID_REQUEST],
  ['a NUL in a value', form(`${DEV_LOGIN}&tenant=%00&email=a%00@x.test`), INVALID_REQUEST],
  ['a very long value', form(`grant_type=refresh_token&refresh_token=${'a'.repeat(200_000)}`), INVALID_REQUEST],
  ['a very long body', form(`grant_type=refresh_token&refresh_token=a${'&x=1'.repeat(300_000)}`), INVALID_REQUEST],
  ['a very long exchanged token', form(`${EXCHANGE}&subject_token=${'e'.repeat(100_000)}`), INVALID_REQUEST],
  ['Basic credentials that are not base64', withBasic('Basic !!!*not base64*'), UNREADABLE_CLIENT],
  ['Basic credentials with broken padding', withBasic('Basic YWJjOmRlZg=x'), UNREADABLE_CLIENT],
  ['Basic credentials without a colon', withBasic(basic('just-an-id')), UNREADABLE_CLIENT],
  ['a Basic client id with broken percent-encoding', withBasic(basic('%E0%A4%A:secret')), UNREADABLE_CLIENT],
  ['a Basic secret with broken percent-encoding', withBasic(basic('id:%E0%A4%A')), UNREADABLE_CLIENT],
  ['Basic credentials that are not UTF-8', withBasic(`Basic ${Buffer.from([0xff, 0xfe, 0x3a, 0xc3]).toString('base64')}`), UNREADABLE_CLIENT],
  ['Basic credentials and a client_secret both', { ...form('grant_type=client_credentials&client_secret=jvk_x'), authorization: basic('id:secret') }, UNREADABLE_CLIENT],
  ['a broken percent-encoding in the form', form('grant_type=refresh_token&refresh_token=%E0%A4%A'), [[400, 'invalid_grant'], ...INVALID_REQUEST]],
];


const NAMES = ['grant_type', 'refresh_token', 'client_id', 'client_secret', 'subject_token', 'subject_token_type', 'tenant', 'email', 'scope', '', 'a[b]', '__proto__', 'constructor'];
const GRANTS = ['client_credentials', 'refresh_token', DEV_LOGIN_GRANT, TOKEN_EXCHANGE_GRANT, 'password', ''];
const PIECES = ['%', '%E0%A4%A', '%00', '%ZZ', '%C3%28', '&', '=', '+', '..', 'jvk_', '00000000-0000-4000-8000-000000000000.', 'eyJhbGciOiJub25lIn0.eyJpc3MiOiJcdTAwMDAifQ.', '\u00e9', '\ud83d\ude00', '\ud800', '\\', '"', '{', '[]', '\u0000', 'a'];
const CONTENT_TYPES = [FORM, `${FORM}; charset=utf-8`, `${FORM}; charset=latin1`, 'application/json', 'text/plain', 'multipart/form-data', 'application/octet-stream', 'x/y; a=', undefined];

/** A random request of the kind clients get wrong: odd content types, repeated or strange parameters, broken client authentication. */
function malformedRequest(random: SeededRandom): Malformed {
  const short = () => Array.from({ length: random.below(6) }, () => random.pick(PIECES)).join('');
  const value = () => {
    if (random.chance(0.2)) return random.pick(GRANTS);
    if (random.chance(0.03)) return 'x'.repeat(random.below(150_000));
    return short();
  };
  const params = Array.from({ length: random.below(6) }, () => `${random.pick(NAMES)}=${value()}`);
  if (random.chance(0.6)) params.unshift(`grant_type=${encodeURIComponent(random.pick(GRANTS))}`);
  if (params.length && random.chance(0.3)) params.push(random.pick(params));
  const contentType = random.pick(CONTENT_TYPES);
  const asJson = () => {
    const entries = params.map((param) => param.split('=')).map(([name, v]) => [name, random.pick([v, random.below(9), { v }, [v, v], null, true])]);
    return JSON.stringify(Object.fromEntries(entries));
  };
  const bytes = () => Buffer.from(Array.from({ length: random.below(64) }, () => random.below(256)));
  const body = contentType === 'application/json' && random.chance(0.7) ? asJson() : random.chance(0.1) ? bytes() : params.join('&');
  // Header values must stay printable and short, or fetch and Node's parser refuse them before any endpoint does.
  const printable = () => Array.from({ length: random.below(40) }, () => String.fromCharCode(0x20 + random.below(0x5f))).join('');
  const authorizations = [
    `Basic ${printable()}`,
    basic(`${short()}:${short()}`.replace(/[^\x20-\x7e]/g, '')),
    `Basic ${Buffer.from(printable()).toString('base64')}`,
    `Bearer ${printable()}`,
    printable(),
  ];
  return { body: random.chance(0.05) ? undefined : body, contentType, authorization: random.chance(0.3) ? random.pick(authorizations) : undefined };
}

function assertRfc6749Refusal(answer: Awaited<ReturnType<typeof post>>, allowed: Answers | 'any', what: string) {
  assert.ok(answer.status < 500, `${what}: ${answer.status} ${answer.text.slice(0, 300)}`);
  assert.ok(RFC_6749_ERRORS.has(String(answer.error)), `${what}: not an RFC 6749 error: ${answer.status} ${answer.text.slice(0, 300)}`);
  assert.equal(answer.cacheControl, 'no-store', what);
  if (allowed === 'any') assert.ok([400, 401].includes(answer.status), `${what}: ${answer.status}`);
  else assert.ok(allowed.some(([status, error]) => answer.status === status && answer.error === error), `${what}: ${answer.status} ${answer.error}, expected one of ${JSON.stringify(allowed)}`);
}

for (const variant of databaseVariants()) {
  describe(`/oauth/token refuses malformed requests with RFC 6749 errors, on ${variant.name}`, { skip: variant.skip }, () => {
    let stack: TestStack;
    const endpoints: Record<'tenancy' | 'gateway', string> = { tenancy: '', gateway: '' };

    before(async () => {
      // Malformed input is under test here, not the rate of anonymous callers.
      stack = await startTestStack(variant, { AUTH_DEV_LOGIN: 'true', ANONYMOUS_REQUESTS_PER_SECOND: '100000', ANONYMOUS_BURST: '100000' });
      endpoints.tenancy = stack.tokenUrl;
      endpoints.gateway = new URL('/oauth/token', stack.gatewayUrl).href;
    });
    after(() => stack?.close());

    for (const endpoint of ['tenancy', 'gateway'] as const) {
      for (const [name, request, allowed] of CASES) {
        test(`${endpoint}: ${name} → ${allowed.map(([status, error]) => `${status} ${error}`).join(' or ')}`, async () => {
          assertRfc6749Refusal(await post(endpoints[endpoint], request), allowed, name);
        });
      }
    }

    test(`${FUZZ_REQUESTS} random malformed requests, at tenancy and through the gateway: 400 or 401 with an RFC 6749 error, never 5xx`, async (t) => {
      const seed = Number(process.env.TOKEN_FUZZ_SEED ?? randomInt(2 ** 31));
      t.diagnostic(`seed ${seed} (replay with TOKEN_FUZZ_SEED=${seed})`);
      const random = seededRandom(seed);
      for (let i = 0; i < FUZZ_REQUESTS; i++) {
        const request = malformedRequest(random);
        const endpoint = i % 2 ? 'gateway' : 'tenancy';
        const shown = `seed ${seed} #${i} at ${endpoint}: ${JSON.stringify({ ...request, body: String(request.body ?? '').slice(0, 200), authorization: request.authorization?.slice(0, 200) })}`;
        assertRfc6749Refusal(await post(endpoints[endpoint], request), 'any', shown);
      }
    });

    test('well-formed requests still get tokens, at tenancy and through the gateway (Basic authentication passed on)', async () => {
      const slug = `fuzz-${randomUUID().slice(0, 8)}`;
      const email = `owner@${slug}.test`;
      const { createTenant } = await graphql<{ createTenant: { tenant: { id: string }; owner: { id: string } } }>(stack.gatewayUrl, CREATE_TENANT, {
        input: { name: 'Fuzz', slug, owner: { email, name: 'Owner' } },
      });
      const form = `grant_type=${encodeURIComponent(DEV_LOGIN_GRANT)}&tenant=${slug}&email=${encodeURIComponent(email)}`;
      for (const url of Object.values(endpoints)) {
        const answer = await post(url, { contentType: `${FORM}; charset=UTF-8`, body: form });
        assert.equal(answer.status, 200, `${url}: ${answer.text}`);
      }
      const owner = { headers: bearer(await devLogin(stack.tokenUrl, slug, email)) };
      assert.ok(createTenant.owner.id);
      const key = await serviceKey(stack, { ...owner, tenantId: createTenant.tenant.id, userId: createTenant.owner.id, slug, email }, { roles: ['viewer'] });
      const viaGateway = await post(endpoints.gateway, { contentType: FORM, body: 'grant_type=client_credentials', authorization: basic(`${key.keyId}:${key.secret}`) });
      assert.equal(viaGateway.status, 200, viaGateway.text);
    });
  });
}
