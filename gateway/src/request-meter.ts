import { randomUUID } from 'node:crypto';
import { METER_SCOPE, postGraphQL, PRINCIPAL_HEADER, type Logger, type Principal, type PrincipalSigner } from '@jarvis/platform';

/** The usage subgraph's door for the gateway alone: not in the API, and it needs the meter scope no tenant holds. */
const RECORD = `mutation($quantity: Int!, $idempotencyKey: String!) { recordMeteredRequests(quantity: $quantity, idempotencyKey: $idempotencyKey) }`;

interface Batch {
  idempotencyKey: string;
  principal: Principal;
  quantity: number;
}

/**
 * Counts each tenant's requests at the gateway and records them in the usage ledger once per `flushMs`, for
 * the tenant, as the gateway's meter (a principal holding only METER_SCOPE), through the usage subgraph's
 * recordMeteredRequests, which writes them as a usage event. A batch keeps its idempotency key until usage
 * has it, so a retried flush counts once; a gateway that dies loses at most its unflushed interval.
 */
export function requestMeter({ usageUrl, signer, flushMs, log }: { usageUrl: string; signer: PrincipalSigner; flushMs: number; log: Logger }) {
  const instance = randomUUID();
  let counting = new Map<string, Batch>();
  const pending: Batch[] = [];
  let flushing: Promise<void> | undefined;

  async function send(batch: Batch): Promise<boolean> {
    const token = await signer.sign(batch.principal);
    const variables = { quantity: batch.quantity, idempotencyKey: batch.idempotencyKey };
    const { status, body } = await postGraphQL(usageUrl, RECORD, variables, { [PRINCIPAL_HEADER]: token }).catch((error: Error) => ({
      status: 0,
      body: { errors: [{ message: error.message }] },
    }));
    if (status === 200 && !body.errors?.length) return true;
    log.warn({ status, errors: body.errors }, 'recording request counts failed; retrying at the next flush');
    return false;
  }

  async function flushNow(): Promise<void> {
    pending.push(...counting.values());
    counting = new Map();
    const unsent = [];
    for (const batch of pending.splice(0)) if (!(await send(batch))) unsent.push(batch);
    pending.push(...unsent);
  }

  const flush = () => (flushing ??= flushNow().finally(() => (flushing = undefined)));
  const timer = setInterval(() => void flush(), flushMs);
  timer.unref();

  return {
    /** One request by a signed-in caller. */
    count(principal: Principal) {
      const { tenantId } = principal;
      if (!tenantId) return;
      const batch = counting.get(tenantId);
      if (batch) batch.quantity++;
      else {
        const meter: Principal = { tenantId, roles: [], scopes: [METER_SCOPE], permissions: [], isolation: principal.isolation };
        counting.set(tenantId, { idempotencyKey: `requests:${instance}:${randomUUID()}`, principal: meter, quantity: 1 });
      }
    },
    flush,
    async close() {
      clearInterval(timer);
      await flush();
    },
  };
}
