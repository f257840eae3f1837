import type { IncomingMessage } from 'node:http';
import proxyAddr from '@fastify/proxy-addr';

/**
 * The client's address, as every per-address limit counts it: past the trusted proxies (TRUSTED_PROXIES), from
 * X-Forwarded-For, the way Fastify reads request.ip for HTTP; the connection's peer when none is trusted. For
 * WebSocket upgrades, which Fastify never sees.
 */
export function clientAddress(trustedProxies: readonly string[]): (request: IncomingMessage) => string {
  if (trustedProxies.length === 0) return (request) => request.socket.remoteAddress ?? 'unknown';
  const trusted = proxyAddr.compile([...trustedProxies]);
  return (request) => proxyAddr(request, trusted);
}
