/**
 * The one guard for outbound calls to URLs a tenant can set (issuers' JWKS, workflow HTTP tools, MCP servers,
 * document sources): an allowed scheme, no credentials in the URL, and public unicast addresses only — judged
 * after DNS resolution, at connection time (the address checked is the address connected to) and on every
 * redirect — unless the operator allows a host or range (OUTBOUND_ALLOWED_HOSTS).
 */
import type { LookupAddress } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent, buildConnector, fetch as undiciFetch, type Response as UndiciResponse } from 'undici';

type Address = ipaddr.IPv4 | ipaddr.IPv6;
type Range = [Address, number];

/** Why an outbound call did not happen, in words a tenant may read after the URL's name ("jwksUrl <message>"). */
export class OutboundError extends Error {
  override name = 'OutboundError';
}

/** Refused by policy: the URL, an address it reaches, a redirect, or the size of the answer. */
export class OutboundRefusedError extends OutboundError {
  override name = 'OutboundRefusedError';
}

/** Could not be done: the host does not resolve, cannot be reached, or did not answer in time. */
export class OutboundFailedError extends OutboundError {
  override name = 'OutboundFailedError';
}

export interface OutboundPolicyOptions {
  /** Plain http as well as https (local test servers). */
  allowHttp?: boolean;
  /** Host names, addresses and CIDR ranges that may be reached though not public (OUTBOUND_ALLOWED_HOSTS). */
  allowedHosts?: readonly string[];
}

export interface OutboundGuardOptions extends OutboundPolicyOptions {
  /** For the whole call: every redirect and the body included. */
  timeoutMs?: number;
  maxResponseBytes?: number;
}

/** What a guarded fetch sends; bodies are ones that can be sent again after a 307 or 308. */
export interface OutboundRequest {
  method?: string;
  headers?: HeadersInit;
  body?: string | Uint8Array | URLSearchParams | null;
  signal?: AbortSignal;
}

interface Hop {
  url: URL;
  method: string;
  headers: Headers;
  body: OutboundRequest['body'];
}

export const MAX_REDIRECTS = 3;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const NULL_BODY_STATUSES = new Set([204, 205, 304]);
/** Not sent to another origin than the one they were meant for (as fetch does). */
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];
const BODY_HEADERS = ['content-type', 'content-length', 'content-encoding', 'content-language', 'content-location'];

// IANA's global unicast space: ipaddr.js calls some addresses outside it unicast (IPv4-compatible ::a.b.c.d).
const IPV6_GLOBAL_UNICAST = ipaddr.parseCIDR('2000::/3');
// RFC 6052's well-known NAT64 prefix: the last 32 bits are the IPv4 address really reached.
const NAT64_WELL_KNOWN = ipaddr.parseCIDR('64:ff9b::/96');

/** ipaddr.js's range names, as a reason shows them; any range not named here is "reserved". */
const RANGE_LABELS: Record<string, string> = {
  loopback: 'loopback',
  private: 'private',
  linkLocal: 'link-local',
  uniqueLocal: 'unique-local',
  carrierGradeNat: 'carrier-grade NAT',
  unspecified: 'unspecified',
  broadcast: 'broadcast',
  multicast: 'multicast',
  rfc6052: 'NAT64',
  '6to4': '6to4',
  teredo: 'Teredo',
  rfc6145: 'IPv4-translated',
};
const AN = new Set(['unspecified', 'IPv4-translated']);

/**
 * Which kind of address this is when it is not public unicast ("loopback", "link-local", …); undefined when it
 * is. IPv6 forms that embed an IPv4 address are judged by it where it is known where (IPv4-mapped, NAT64's
 * well-known prefix), and refused otherwise (6to4, Teredo, IPv4-translated).
 */
export function nonPublicRange(address: string): string | undefined {
  return rangeOf(ipaddr.parse(address));
}

function rangeOf(address: Address): string | undefined {
  if (address instanceof ipaddr.IPv4) return labelOf(address.range());
  const embedded = embeddedIPv4(address);
  if (embedded) return rangeOf(embedded);
  const range = address.range();
  return range === 'unicast' && !address.match(IPV6_GLOBAL_UNICAST) ? 'reserved' : labelOf(range);
}

function labelOf(range: string): string | undefined {
  return range === 'unicast' ? undefined : (RANGE_LABELS[range] ?? 'reserved');
}

function embeddedIPv4(address: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  if (address.isIPv4MappedAddress()) return address.toIPv4Address();
  if (address.match(NAT64_WELL_KNOWN)) return ipaddr.fromByteArray(address.toByteArray().slice(12)) as ipaddr.IPv4;
  return undefined;
}

/** One OUTBOUND_ALLOWED_HOSTS entry: a CIDR range, an address (a range of one) or a host name. */
export function parseAllowedHost(entry: string): { range: Range } | { name: string } {
  const text = entry.trim().toLowerCase();
  if (ipaddr.IPv4.isValidCIDRFourPartDecimal(text) || ipaddr.IPv6.isValidCIDR(text)) return { range: ipaddr.parseCIDR(text) };
  if (isIP(text)) {
    const address = ipaddr.parse(text);
    return { range: [address, address instanceof ipaddr.IPv4 ? 32 : 128] };
  }
  const name = text.replace(/\.$/, '');
  if (!name || name.includes('*') || !URL.canParse(`https://${name}`) || new URL(`https://${name}`).hostname !== name) {
    throw new Error(`"${entry}" is not a host name, an address or a CIDR range`);
  }
  return { name };
}

class AllowList {
  private readonly names = new Set<string>();
  private readonly ranges: Range[] = [];

  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const parsed = parseAllowedHost(entry);
      if ('name' in parsed) this.names.add(parsed.name);
      else this.ranges.push(parsed.range);
    }
  }

  hasName(hostname: string): boolean {
    return this.names.has(hostname.toLowerCase().replace(/\.$/, ''));
  }

  hasAddress(address: Address): boolean {
    const plain = address instanceof ipaddr.IPv6 && address.isIPv4MappedAddress() ? address.toIPv4Address() : address;
    return this.ranges.some(([network, bits]) => plain.kind() === network.kind() && plain.match(network, bits));
  }
}

/** A URL's host without the brackets of an IPv6 literal. */
function bareHost(hostname: string): string {
  return hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
}

/**
 * Checks and fetches URLs a tenant set. `check` is for when such a URL is saved; `fetch` for every call, which
 * checks again at each connection and redirect. One guard per policy: it keeps its connections, so close it.
 */
export class OutboundGuard {
  private readonly allowHttp: boolean;
  private readonly allowList: AllowList;
  private readonly timeoutMs: number;
  private readonly maxResponseBytes: number;
  private readonly agent: Agent;

  constructor({ allowHttp = false, allowedHosts = [], timeoutMs = 10_000, maxResponseBytes = 1024 * 1024 }: OutboundGuardOptions = {}) {
    this.allowHttp = allowHttp;
    this.allowList = new AllowList(allowedHosts);
    this.timeoutMs = timeoutMs;
    this.maxResponseBytes = maxResponseBytes;
    this.agent = new Agent({ connect: this.connector() });
  }

  /** What can be known without the network: the scheme, no user name or password, a host, a literal address. */
  checkUrl(input: string | URL): URL {
    if (!URL.canParse(input)) throw new OutboundRefusedError('is not a URL');
    const url = new URL(input);
    if (url.protocol !== 'https:' && !(this.allowHttp && url.protocol === 'http:')) {
      throw new OutboundRefusedError(this.allowHttp ? 'is not an http or https URL' : 'is not an https URL');
    }
    if (url.username || url.password) throw new OutboundRefusedError('carries a user name or password');
    if (!url.hostname) throw new OutboundRefusedError('names no host');
    const host = bareHost(url.hostname);
    if (isIP(host)) this.checkAddress(host, 'points to');
    return url;
  }

  /** `checkUrl`, and every address the host resolves to now. */
  async check(input: string | URL): Promise<URL> {
    const url = this.checkUrl(input);
    if (!isIP(bareHost(url.hostname))) await this.resolve(url.hostname);
    return url;
  }

  /**
   * undici's fetch through connections that only reach allowed addresses, following at most MAX_REDIRECTS
   * redirects (each checked as the first URL), within the time and size limits. The answer is read whole.
   */
  async fetch(input: string | URL, { method = 'GET', headers, body = null, signal }: OutboundRequest = {}): Promise<Response> {
    const deadline = AbortSignal.timeout(this.timeoutMs);
    const combined = signal ? AbortSignal.any([signal, deadline]) : deadline;
    let hop: Hop = { url: this.checkUrl(input), method, headers: new Headers(headers), body };
    for (let redirects = 0; ; redirects++) {
      const response = await this.send(hop, combined).catch((error: unknown) => {
        const failure = this.failure(error, deadline, signal);
        throw redirects ? viaRedirect(failure) : failure;
      });
      const location = REDIRECT_STATUSES.has(response.status) ? response.headers.get('location') : null;
      if (location === null) {
        return this.readWhole(response).catch((error: unknown) => {
          throw this.failure(error, deadline, signal);
        });
      }
      await response.body?.cancel();
      if (redirects === MAX_REDIRECTS) throw new OutboundRefusedError(`redirects more than ${MAX_REDIRECTS} times`);
      hop = this.redirected(hop, response.status, location);
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }

  private send({ url, method, headers, body }: Hop, signal: AbortSignal): Promise<UndiciResponse> {
    return undiciFetch(url, { method, headers: [...headers], body, signal, redirect: 'manual', dispatcher: this.agent });
  }

  private redirected(hop: Hop, status: number, location: string): Hop {
    let url: URL;
    try {
      url = this.checkUrl(new URL(location, hop.url));
    } catch (error) {
      throw viaRedirect(error instanceof OutboundError ? error : new OutboundRefusedError('is not a URL'));
    }
    const headers = new Headers(hop.headers);
    if (url.origin !== hop.url.origin) for (const name of CREDENTIAL_HEADERS) headers.delete(name);
    const becomesGet = status === 303 ? hop.method !== 'HEAD' : (status === 301 || status === 302) && hop.method === 'POST';
    if (!becomesGet) return { ...hop, url, headers };
    for (const name of BODY_HEADERS) headers.delete(name);
    return { url, method: 'GET', headers, body: null };
  }

  private async readWhole(response: UndiciResponse): Promise<Response> {
    const tooLarge = () => new OutboundRefusedError(`answers with more than ${Math.ceil(this.maxResponseBytes / 1024)} KiB`);
    if (Number(response.headers.get('content-length')) > this.maxResponseBytes) {
      await response.body?.cancel();
      throw tooLarge();
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of response.body ?? []) {
      size += chunk.byteLength;
      if (size > this.maxResponseBytes) throw tooLarge();
      chunks.push(chunk);
    }
    const body = NULL_BODY_STATUSES.has(response.status) ? null : Buffer.concat(chunks);
    const headers = new Headers([...response.headers]);
    // the body is decoded and whole now
    for (const name of ['content-encoding', 'content-length']) headers.delete(name);
    return new Response(body, { status: response.status, statusText: response.statusText, headers });
  }

  /** The guard's own error for what went wrong; the caller's abort stays the caller's. */
  private failure(error: unknown, deadline: AbortSignal, callerSignal: AbortSignal | undefined): unknown {
    for (let cause = error; cause instanceof Error; cause = cause.cause) {
      if (cause instanceof OutboundError) return cause;
    }
    if (deadline.aborted) return new OutboundFailedError(`did not answer within ${this.timeoutMs / 1000} s`, { cause: error });
    if (callerSignal?.aborted) return error;
    return new OutboundFailedError('could not be reached', { cause: error });
  }

  /** A connector that refuses literal addresses (which skip DNS) and resolves names through `lookup`. */
  private connector(): buildConnector.connector {
    const connect = buildConnector({ lookup: this.lookup, timeout: this.timeoutMs });
    return (options, callback) => {
      const host = bareHost(options.hostname);
      try {
        if (isIP(host)) this.checkAddress(host, 'points to');
      } catch (error) {
        return callback(error as Error, null);
      }
      return connect(options, callback);
    };
  }

  /** dns.lookup for net.connect: every address checked, then answered in the shape net asked for. */
  private readonly lookup: LookupFunction = (hostname, options, callback) => {
    this.resolve(hostname).then((resolved) => {
      const addresses = options.family ? resolved.filter(({ family }) => family === options.family) : resolved;
      if (!addresses.length) callback(new OutboundFailedError('does not resolve'), '');
      else if (options.all) callback(null, addresses);
      else callback(null, addresses[0]!.address, addresses[0]!.family);
    }, (error: Error) => callback(error, ''));
  };

  /** All addresses of `hostname`, refused when any of them is not allowed. */
  private async resolve(hostname: string): Promise<LookupAddress[]> {
    const addresses = await lookup(hostname, { all: true }).catch((error: unknown) => {
      throw new OutboundFailedError('does not resolve', { cause: error });
    });
    if (!addresses.length) throw new OutboundFailedError('does not resolve');
    if (!this.allowList.hasName(hostname)) for (const { address } of addresses) this.checkAddress(address, 'resolves to');
    return addresses;
  }

  private checkAddress(text: string, verb: 'points to' | 'resolves to'): void {
    const address = ipaddr.parse(text);
    if (this.allowList.hasAddress(address)) return;
    const range = rangeOf(address);
    if (range) throw new OutboundRefusedError(`${verb} ${AN.has(range) ? 'an' : 'a'} ${range} address`);
  }
}

/** A refusal met after a redirect, said so: "redirects to a location that resolves to a loopback address". */
function viaRedirect(error: unknown): unknown {
  if (!(error instanceof OutboundError)) return error;
  const Kind = error instanceof OutboundRefusedError ? OutboundRefusedError : OutboundFailedError;
  return new Kind(`redirects to a location that ${error.message}`, { cause: error });
}
