/**
 * The guard for outbound calls to URLs a tenant sets: address forms and ranges refused, resolution and
 * connection-time checks, redirects, size and time limits and the operator's allow-list, against real local
 * servers (no DNS of public names here: `.invalid` never resolves anywhere).
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '@jarvis/platform/config';
import { OutboundFailedError, OutboundGuard, OutboundRefusedError } from '@jarvis/platform/outbound';

interface CountingServer {
  origin: string;
  port: number;
  connections: number;
  /** The authorization header of each request, in order. */
  authorizations: (string | undefined)[];
  close(): Promise<void>;
}

/** An HTTP server on `host` that counts the connections it accepts. */
async function countingServer(host: string, handle: (request: IncomingMessage, response: ServerResponse) => void): Promise<CountingServer> {
  const server: Server = createServer((request, response) => {
    counting.authorizations.push(request.headers.authorization);
    handle(request, response);
  });
  server.on('connection', () => counting.connections++);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  const counting: CountingServer = {
    origin: `http://${host}:${port}`,
    port,
    connections: 0,
    authorizations: [],
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  return counting;
}

function redirectTo(location: string, status = 302) {
  return (_request: IncomingMessage, response: ServerResponse) => response.writeHead(status, { location }).end();
}

const refused = (pattern: RegExp) => (error: unknown) => error instanceof OutboundRefusedError && pattern.test(error.message);

describe('which URLs and addresses the guard refuses', () => {
  const guard = new OutboundGuard();
  after(() => guard.close());

  test('every address form of the report is refused, before any request', async () => {
    const report = {
      'https://127.0.0.1:8443/jwks.json': 'loopback',
      'https://localhost/jwks.json': 'loopback',
      'https://[::1]/jwks.json': 'loopback',
      'https://2130706433/': 'loopback',
      'https://127.1/': 'loopback',
      'https://0x7f.1/': 'loopback',
      'https://017700000001/': 'loopback',
      'https://10.0.0.1/': 'private',
      'https://169.254.169.254/latest/meta-data/': 'link-local',
    };
    for (const [url, range] of Object.entries(report)) {
      await assert.rejects(guard.check(url), refused(new RegExp(`(points|resolves) to a ${range} address`)), url);
    }
  });

  test('loopback, private, link-local, unique-local, CGNAT, unspecified, broadcast, multicast and reserved ranges are refused', async () => {
    const ranges: Record<string, string> = {
      '127.255.255.254': 'a loopback',
      '172.16.0.1': 'a private',
      '192.168.1.1': 'a private',
      '169.254.0.1': 'a link-local',
      '[fe80::1]': 'a link-local',
      '[fc00::1]': 'a unique-local',
      '[fd00:ec2::254]': 'a unique-local',
      '100.64.0.1': 'a carrier-grade NAT',
      '100.100.100.200': 'a carrier-grade NAT',
      '0.0.0.0': 'an unspecified',
      '0.1.2.3': 'an unspecified',
      '[::]': 'an unspecified',
      '255.255.255.255': 'a broadcast',
      '224.0.0.1': 'a multicast',
      '[ff02::1]': 'a multicast',
      '198.18.0.1': 'a reserved', // benchmarking
      '192.0.2.1': 'a reserved', // documentation
      '240.0.0.1': 'a reserved',
      '[2001:db8::1]': 'a reserved',
    };
    for (const [host, range] of Object.entries(ranges)) {
      await assert.rejects(guard.check(`https://${host}/`), refused(new RegExp(`^points to ${range} address$`)), host);
    }
  });

  test('IPv6 forms embedding an IPv4 address are judged by it, or refused where it cannot be told', async () => {
    const embedding: Record<string, string> = {
      '[::ffff:127.0.0.1]': 'a loopback', // IPv4-mapped
      '[::ffff:169.254.169.254]': 'a link-local',
      '[64:ff9b::10.0.0.1]': 'a private', // NAT64, well-known prefix
      '[64:ff9b::127.0.0.1]': 'a loopback',
      '[64:ff9b:1::a00:1]': 'a NAT64', // NAT64, local-use prefix
      '[2002:7f00:1::1]': 'a 6to4',
      '[2001::1]': 'a Teredo',
      '[::127.0.0.1]': 'a reserved', // IPv4-compatible (deprecated)
    };
    for (const [host, range] of Object.entries(embedding)) {
      await assert.rejects(guard.check(`https://${host}/`), refused(new RegExp(`^points to ${range} address$`)), host);
    }
    for (const host of ['[::ffff:93.184.216.34]', '[64:ff9b::93.184.216.34]']) {
      assert.equal((await guard.check(`https://${host}/`)).protocol, 'https:', host);
    }
  });

  test('public unicast addresses pass the check', async () => {
    for (const url of ['https://93.184.216.34/', 'https://8.8.8.8/jwks.json', 'https://[2606:4700::1111]/']) {
      assert.equal((await guard.check(url)).href, url);
    }
  });

  test('https only unless http is allowed, no user name or password, a URL at all', async () => {
    await assert.rejects(guard.check('http://93.184.216.34/'), refused(/^is not an https URL$/));
    await assert.rejects(guard.check('ftp://93.184.216.34/'), refused(/^is not an https URL$/));
    await assert.rejects(guard.check('file:///etc/passwd'), refused(/^is not an https URL$/));
    await assert.rejects(guard.check('https://user:secret@93.184.216.34/'), refused(/^carries a user name or password$/));
    await assert.rejects(guard.check('not a url'), refused(/^is not a URL$/));
    const allowingHttp = new OutboundGuard({ allowHttp: true });
    assert.equal((await allowingHttp.check('http://93.184.216.34/')).protocol, 'http:');
    await assert.rejects(allowingHttp.check('ftp://93.184.216.34/'), refused(/^is not an http or https URL$/));
    await allowingHttp.close();
  });

  test('a host name that does not resolve is refused with that reason', async () => {
    await assert.rejects(guard.check('https://jwks.invalid/keys'), (error: unknown) => error instanceof OutboundFailedError && error.message === 'does not resolve');
  });
});

describe('guarded fetches', () => {
  let loopback: CountingServer;
  let other: CountingServer;

  before(async () => {
    loopback = await countingServer('127.0.0.1', (request, response) => {
      if (request.url === '/big') return response.writeHead(200, { 'content-length': 300 * 1024 }).end(Buffer.alloc(300 * 1024));
      if (request.url === '/streamed') {
        response.writeHead(200); // chunked: no length announced
        for (let i = 0; i < 30; i++) response.write(Buffer.alloc(10 * 1024));
        return response.end();
      }
      if (request.url === '/silent') return; // never answers
      if (request.url === '/loop') return redirectTo('/loop')(request, response);
      if (request.url === '/to-other') return redirectTo(`${other.origin}/keys`)(request, response);
      if (request.url === '/to-final') return redirectTo('/final', 301)(request, response);
      if (request.url === '/to-userinfo') return redirectTo(`http://user:secret@127.0.0.1:${loopback.port}/keys`)(request, response);
      if (request.url === '/to-ftp') return redirectTo('ftp://127.0.0.1/keys', 307)(request, response);
      response.end(`{"path":"${request.url}"}`);
    });
    other = await countingServer('127.0.0.2', (_request, response) => response.end('{"keys":[]}'));
  });
  after(async () => {
    await loopback.close();
    await other.close();
  });

  test('a host name resolving to loopback is refused when connecting: no connection is made', async () => {
    const guard = new OutboundGuard({ allowHttp: true });
    const before = loopback.connections;
    await assert.rejects(guard.fetch(`http://localhost:${loopback.port}/keys`), refused(/^resolves to a loopback address$/));
    assert.equal(loopback.connections, before);
    await guard.close();

    // the same request, with the operator allowing that name, does connect
    const allowing = new OutboundGuard({ allowHttp: true, allowedHosts: ['localhost'] });
    const response = await allowing.fetch(`http://localhost:${loopback.port}/keys`);
    assert.deepEqual([response.status, await response.json()], [200, { path: '/keys' }]);
    assert.equal(loopback.connections, before + 1);
    await allowing.close();
  });

  describe('with 127.0.0.1 allowed by the operator', () => {
    const guard = new OutboundGuard({ allowHttp: true, allowedHosts: ['127.0.0.1'], maxResponseBytes: 256 * 1024, timeoutMs: 1_000 });
    after(() => guard.close());

    test('redirects are followed, each one checked', async () => {
      const response = await guard.fetch(`${loopback.origin}/to-final`);
      assert.deepEqual([response.status, await response.json()], [200, { path: '/final' }]);
    });

    test('a redirect to a loopback address the operator did not allow is refused, and that address sees no connection', async () => {
      const before = other.connections;
      await assert.rejects(
        guard.fetch(`${loopback.origin}/to-other`),
        refused(/^redirects to a location that points to a loopback address$/),
      );
      assert.equal(other.connections, before);
    });

    test('a redirect is checked as the first URL was: an allowed scheme, no user name or password', async () => {
      await assert.rejects(guard.fetch(`${loopback.origin}/to-ftp`), refused(/^redirects to a location that is not an http or https URL$/));
      await assert.rejects(
        guard.fetch(`${loopback.origin}/to-userinfo`),
        refused(/^redirects to a location that carries a user name or password$/),
      );
    });

    test('more than three redirects are refused', async () => {
      const before = loopback.authorizations.length;
      await assert.rejects(guard.fetch(`${loopback.origin}/loop`), refused(/^redirects more than 3 times$/));
      assert.equal(loopback.authorizations.length - before, 4, 'the first request and three redirects');
    });

    test('an answer larger than the limit is refused, whether its length is announced or not', async () => {
      await assert.rejects(guard.fetch(`${loopback.origin}/big`), refused(/^answers with more than 256 KiB$/));
      await assert.rejects(guard.fetch(`${loopback.origin}/streamed`), refused(/^answers with more than 256 KiB$/));
      assert.equal((await (await guard.fetch(`${loopback.origin}/small`)).json()).path, '/small');
    });

    test('a server that does not answer in time fails with that reason', async () => {
      await assert.rejects(
        guard.fetch(`${loopback.origin}/silent`),
        (error: unknown) => error instanceof OutboundFailedError && error.message === 'did not answer within 1 s',
      );
    });

    test("the caller's own abort stays the caller's; a port nobody listens on could not be reached", async () => {
      await assert.rejects(guard.fetch(`${loopback.origin}/silent`, { signal: AbortSignal.timeout(50) }), { name: 'TimeoutError' });
      const closed = await countingServer('127.0.0.1', () => {});
      await closed.close();
      await assert.rejects(
        guard.fetch(`${closed.origin}/keys`),
        (error: unknown) => error instanceof OutboundFailedError && error.message === 'could not be reached',
      );
    });
  });

  test('an allow-listed CIDR range admits its own addresses only', async () => {
    const guard = new OutboundGuard({ allowHttp: true, allowedHosts: ['10.1.0.0/16', '127.0.0.2/32'] });
    assert.equal((await guard.check('https://10.1.2.3/')).hostname, '10.1.2.3');
    await assert.rejects(guard.check('https://10.2.0.1/'), refused(/^points to a private address$/));
    const response = await guard.fetch(`${other.origin}/keys`);
    assert.deepEqual(await response.json(), { keys: [] });
    const before = loopback.connections;
    await assert.rejects(guard.fetch(`${loopback.origin}/keys`), refused(/^points to a loopback address$/));
    assert.equal(loopback.connections, before);
    await guard.close();
  });

  test('credentials are not carried to another origin on a redirect', async () => {
    const guard = new OutboundGuard({ allowHttp: true, allowedHosts: ['127.0.0.0/30'] });
    const response = await guard.fetch(`${loopback.origin}/to-other`, { headers: { authorization: 'Bearer for-the-first-host' } });
    assert.equal(response.status, 200);
    assert.equal(loopback.authorizations.at(-1), 'Bearer for-the-first-host');
    assert.equal(other.authorizations.at(-1), undefined);
    await guard.close();
  });
});

test('OUTBOUND_ALLOWED_HOSTS takes host names, addresses and CIDR ranges; anything else stops start-up', () => {
  assert.deepEqual(loadConfig({}).OUTBOUND_ALLOWED_HOSTS, []);
  assert.deepEqual(loadConfig({ OUTBOUND_ALLOWED_HOSTS: 'idp.internal, 10.20.0.0/16,fd00::/8 ,127.0.0.1' }).OUTBOUND_ALLOWED_HOSTS, [
    'idp.internal',
    '10.20.0.0/16',
    'fd00::/8',
    '127.0.0.1',
  ]);
  for (const invalid of ['idp.internal:8443', '10.0.0.0/33', 'https://idp.internal', '*.internal', '127.1']) {
    assert.throws(() => loadConfig({ OUTBOUND_ALLOWED_HOSTS: invalid }), /OUTBOUND_ALLOWED_HOSTS/, invalid);
  }
});
