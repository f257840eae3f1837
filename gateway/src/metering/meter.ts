import { postGraphQL } from '@jarvis/platform/client';
import { METER_SCOPE, PRINCIPAL_HEADER, type Principal, type PrincipalSigner } from '@jarvis/platform/contracts';
import { occasionalWarning, type Logger } from '@jarvis/platform/logger';
import { memoryRequestCounts, type Metered, type RequestCounts } from './counts.ts';
import { redisRequestCounts } from './redis-counts.ts';
import type { GatewayPolicy } from '../pipeline/policy.ts';

/** The usage subgraph's door for the gateway alone: not in the API, and it needs the meter scope no tenant holds. */
const RECORD = `mutation($quantity: Int!, $idempotencyKey: String!) { recordMeteredRequests(quantity: $quantity, idempotencyKey: $idempotencyKey) }`;

export interface RequestMeterOptions {
  usageUrl: string;
  signer: PrincipalSigner;
  flushMs: number;
  log: Logger;
  /** Where counts wait to be sent: Redis, shared by the replicas; unset, this process (the embedded default). */
  redis?: { url: string; prefix: string };
}

/**
 * Counts each tenant's requests at the gateway and records them in the usage ledger every `flushMs`, for the
 * tenant, as the gateway's meter (a principal holding only METER_SCOPE), through usage's recordMeteredRequests,
 * which writes them as a usage event through usage's outbox. The counts wait in an outbox of their own
 * (counts.ts): on Redis a count is stored before its request is answered, so a gateway killed at any moment
 * loses none, and any replica sends what another left. A batch is recorded under its id, so a retried or
 * repeated send counts once. With counts in this process (no Redis), a gateway that dies loses its unsent ones.
 */
export function requestMeter({ usageUrl, signer, flushMs, log, redis }: RequestMeterOptions) {
  const warn = occasionalWarning(log, 'request counts cannot reach Redis; keeping them in this process until it answers');
  const durable = redis && redisRequestCounts(redis.url, redis.prefix, warn);
  const local = memoryRequestCounts();
  let flushing: Promise<void> | undefined;

  async function send(batchId: string, metered: Metered, quantity: number): Promise<boolean> {
    const principal: Principal = { tenantId: metered.tenantId, roles: [], scopes: [METER_SCOPE], permissions: [], isolation: metered.isolation };
    const variables = { quantity, idempotencyKey: `requests:${batchId}` };
    const headers = { [PRINCIPAL_HEADER]: await signer.sign(principal) };
    const { status, body } = await postGraphQL(usageUrl, RECORD, variables, headers).catch((error: Error) => ({ status: 0, body: { errors: [{ message: error.message }] } }));
    if (status === 200 && !body.errors?.length) return true;
    log.warn({ status, errors: body.errors }, 'recording request counts failed; retrying at the next flush');
    return false;
  }

  async function flushStore(counts: RequestCounts): Promise<void> {
    await counts.seal();
    for (const batch of await counts.claimPending()) {
      for (const { metered, quantity } of batch.counts) {
        if (await send(batch.id, metered, quantity)) await counts.acknowledge(batch.id, metered);
      }
    }
  }

  async function flushNow(): Promise<void> {
    await flushStore(local);
    if (durable) await flushStore(durable).catch(warn);
  }

  const flush = () => (flushing ??= flushNow().finally(() => (flushing = undefined)));
  const timer = setInterval(() => void flush(), flushMs);
  timer.unref();

  return {
    /** One request by a signed-in caller, counted before it is answered. */
    async count(principal: Principal): Promise<void> {
      const { tenantId, isolation } = principal;
      if (!tenantId) return;
      const metered = { tenantId, isolation };
      if (!durable) return local.add(metered);
      await durable.add(metered).catch((error: unknown) => {
        warn(error);
        return local.add(metered);
      });
    },
    flush,
    async close() {
      clearInterval(timer);
      await flush();
      await durable?.close();
    },
  };
}

/** Metering as a gateway policy: every admitted request of a signed-in caller is counted, before it runs. */
export function meteringPolicy(meter: Pick<ReturnType<typeof requestMeter>, 'count'>): GatewayPolicy {
  return { name: 'request metering', admit: ({ principal }) => meter.count(principal) };
}
