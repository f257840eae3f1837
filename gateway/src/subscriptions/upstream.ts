/**
 * Subscriptions to subgraphs over graphql-ws (`graphql-transport-ws`). A subgraph learns who is asking from the
 * signed principal in `connection_init`, so one connection serves one caller: each caller's subscriptions to a
 * subgraph share it, and it closes soon after the last of them ends.
 */
import { createClient, type Client, type FormattedExecutionResult, type SubscribePayload } from 'graphql-ws';
import { GraphQLError } from 'graphql';
import WebSocket from 'ws';
import { PRINCIPAL_HEADER, type Principal } from '@jarvis/platform/contracts';
import type { Logger } from '@jarvis/platform/logger';
import { onStreamEnd } from '@jarvis/platform/streams';

export interface UpstreamOptions {
  /** A subgraph's WebSocket URL, from its HTTP one. */
  urlOf: (service: string) => string | undefined;
  sign: (principal: Principal) => Promise<string>;
  log: Logger;
}

/** How long an idle connection stays open, so a client that resubscribes at once does not reconnect. */
const IDLE_CLOSE_MS = 1_000;

interface Shared {
  client: Client;
  subscriptions: number;
}

export function upstreamSubscriptions({ urlOf, sign, log }: UpstreamOptions) {
  const connections = new Map<string, Shared>();

  function connectionFor(service: string, principal: Principal): [string, Shared] {
    const key = `${service}\u0000${JSON.stringify(principal)}`;
    let shared = connections.get(key);
    if (!shared) {
      const url = urlOf(service);
      if (!url) throw new Error(`no URL for the subgraph ${service}`);
      const client = createClient({
        url,
        webSocketImpl: WebSocket,
        // Signed afresh on every (re)connection: the signature is short-lived.
        connectionParams: async () => ({ [PRINCIPAL_HEADER]: await sign(principal) }),
        lazyCloseTimeout: IDLE_CLOSE_MS,
        retryAttempts: 3,
        on: { error: (error) => log.warn({ err: error, service }, 'subgraph subscription connection failed') },
      });
      shared = { client, subscriptions: 0 };
      connections.set(key, shared);
    }
    return [key, shared];
  }

  function release(key: string, shared: Shared) {
    if (--shared.subscriptions > 0) return;
    connections.delete(key);
    // graphql-ws closes a lazy client's socket itself once idle; dispose frees the client for good.
    setTimeout(() => void shared.client.dispose(), IDLE_CLOSE_MS).unref();
  }

  return {
    /**
     * The subgraph's events for one operation. Ends when the subgraph completes it; `return()` unsubscribes. A
     * subgraph's refusal (an `error` message) or a lost connection is thrown as a GraphQLError.
     */
    subscribe(service: string, principal: Principal, payload: SubscribePayload): AsyncIterableIterator<FormattedExecutionResult<Record<string, unknown>, unknown>> {
      const [key, shared] = connectionFor(service, principal);
      shared.subscriptions++;
      return onStreamEnd(shared.client.iterate(payload), () => release(key, shared), (error) => upstreamError(service, error));
    },
    async close() {
      await Promise.all([...connections.values()].map((shared) => shared.client.dispose()));
      connections.clear();
    },
  };
}

/** What graphql-ws throws (the `error` message's errors, or the socket's CloseEvent), as one GraphQLError. */
function upstreamError(service: string, error: unknown): GraphQLError {
  if (Array.isArray(error) && error.length > 0) {
    const [first] = error as { message?: string; extensions?: Record<string, unknown> }[];
    return new GraphQLError(first?.message ?? 'the subscription failed', { extensions: first?.extensions });
  }
  const reason = error instanceof Error ? error.message : (error as { reason?: string; code?: number })?.reason;
  return new GraphQLError(`the ${service} subgraph's subscription ended: ${reason || 'connection lost'}`, {
    extensions: { code: 'SUBGRAPH_UNAVAILABLE', serviceName: service },
  });
}
