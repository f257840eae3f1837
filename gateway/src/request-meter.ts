import { randomUUID } from 'node:crypto';
import { postGraphQL, PRINCIPAL_HEADER, type Logger, type Principal, type PrincipalSigner } from '@jarvis/platform';

const RECORD = `mutation($input: RecordUsageInput!) { recordUsage(input: $input) { id } }`;

interface Batch {
  idempotencyKey: string;
  principal: Principal;
  quantity: number;
}

/**
 * Counts each tenant's requests at the gateway and records them in the usage ledger once per `flushMs`, as
 * the tenant (a principal with only the usage:write scope), through the usage subgraph's recordUsage. A batch
 * keeps its idempotency key until the ledger has it, so a retried flush counts once; a gateway that dies
 * loses at most its unflushed interval.
 */
export function requestMeter({ usageUrl, signer, flushMs, log }: { usageUrl: string; signer: PrincipalSigner; flushMs: number; log: Logger }) {
  const instance = randomUUID();
  let counting = new Map<string, Batch>();
  const pending: Batch[] = [];
  let flushing: Promise<void> | undefined;

  async function send(batch: Batch): Promise<boolean> {
    const token = await signer.sign(batch.principal);
    const input = { metric: 'REQUESTS', quantity: batch.quantity, idempotencyKey: batch.idempotencyKey };
    const { status, body } = await postGraphQL(usageUrl, RECORD, { input }, { [PRINCIPAL_HEADER]: token }).catch((error: Error) => ({
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
        const meter: Principal = { tenantId, roles: [], scopes: ['usage:write'], permissions: [], isolation: principal.isolation };
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
