import { useEffect, useState, type FormEvent } from 'react';
import { useClient, useErrors, useQuery } from '../api/hooks';
import { SetQuotaDocument, UsageDocument, type UsageMetric } from '../gql/graphql';
import { ErrorList, LoadErrors } from './ErrorList';
import { bytes, count } from './format';

function Meter({ label, used, limit, format = count }: { label: string; used: number; limit: number; format?: (n: number) => string }) {
  const share = limit > 0 ? Math.min(1, used / limit) : 0;
  return (
    <div className="meter" data-used={used} data-limit={limit}>
      <div className="meter-label">
        {label}: <strong>{format(used)}</strong> of {format(limit)}
        <span className="muted"> ({used > 0 && share < 0.0001 ? '< 0.01' : (share * 100).toFixed(share < 0.1 ? 2 : 0)}%)</span>
      </div>
      <div className="bar">
        <div className={share > 0.9 ? 'fill high' : 'fill'} style={{ width: `${share * 100}%` }} />
      </div>
    </div>
  );
}

/** Usage against quota: tokens today and this month, storage and requests, against the limits in force. */
export function Usage({ version }: { version: number }) {
  const client = useClient();
  const { data, errors, refetch } = useQuery(UsageDocument, {});
  const failures = useErrors();
  const [form, setForm] = useState({ tokensPerDay: '', tokensPerMonth: '', storageBytes: '', concurrentStreams: '' });

  // Usage is recorded through the ledger a moment after the work: read again shortly after each change (the
  // mount's own read is useQuery's; version 0 is no change yet).
  useEffect(() => {
    if (version === 0) return;
    const timer = setTimeout(() => void refetch(), 1500);
    return () => clearTimeout(timer);
  }, [version, refetch]);

  const tenant = data?.tenant;
  const quota = tenant?.quota;

  // The form shows the tenant's own lower limits; an empty field is the plan's limit (setQuota replaces them all).
  useEffect(() => {
    if (!quota) return;
    const own = (key: keyof typeof form) => (quota.limits[key] !== quota.planLimits[key] ? String(quota.limits[key]) : '');
    setForm({ tokensPerDay: own('tokensPerDay'), tokensPerMonth: own('tokensPerMonth'), storageBytes: own('storageBytes'), concurrentStreams: own('concurrentStreams') });
  }, [quota]); // eslint-disable-line react-hooks/exhaustive-deps
  const total = (metric: UsageMetric) => tenant?.usage?.totals.find((t) => t.metric === metric)?.quantity ?? 0;

  async function setQuota(event: FormEvent) {
    event.preventDefault();
    const number = (value: string) => (value.trim() === '' ? null : Number(value));
    const result = await failures.run(() =>
      client.request(SetQuotaDocument, {
        input: {
          tokensPerDay: number(form.tokensPerDay),
          tokensPerMonth: number(form.tokensPerMonth),
          storageBytes: number(form.storageBytes),
          concurrentStreams: number(form.concurrentStreams),
        },
      }),
    );
    if (result?.data?.setQuota) await refetch();
  }

  return (
    <section className="panel usage" data-testid="usage-panel">
      <h2>
        Usage and quota{' '}
        <button type="button" className="link" onClick={() => void refetch()}>
          refresh
        </button>
      </h2>
      <LoadErrors errors={errors} />
      {quota && (
        <>
          <p className="muted">
            Plan {quota.plan}
            {tenant?.usage && (
              <>
                {' '}
                · period {tenant.usage.from.slice(0, 10)} – {tenant.usage.to.slice(0, 10)}
              </>
            )}
          </p>
          <Meter label="Model tokens today" used={quota.tokensToday} limit={quota.limits.tokensPerDay} />
          <Meter label="Model tokens this month" used={quota.tokensThisMonth} limit={quota.limits.tokensPerMonth} />
          <Meter label="Storage" used={quota.storageBytes} limit={quota.limits.storageBytes} format={bytes} />
          <dl className="facts">
            <dt>Requests this month</dt>
            <dd>{count(total('REQUESTS'))}</dd>
            <dt>Request rate</dt>
            <dd>
              {quota.limits.requestsPerSecond}/s, burst {quota.limits.burst} (API keys {quota.limits.apiKeyRequestsPerSecond}/s)
            </dd>
            <dt>Prompt / completion tokens this month</dt>
            <dd>
              {count(total('PROMPT_TOKENS'))} / {count(total('COMPLETION_TOKENS'))}
            </dd>
            <dt>Concurrent answers</dt>
            <dd>{quota.limits.concurrentStreams}</dd>
          </dl>
          {quota.memberAllowances.length > 0 && (
            <>
              <h3>Member allowances</h3>
              <ul>
                {quota.memberAllowances.map((a) => (
                  <li key={a.user.id}>
                    {a.user.name}: {count(a.usedToday)} of {count(a.tokensPerDay)} tokens today
                  </li>
                ))}
              </ul>
            </>
          )}
          <details>
            <summary>Lower the limits (tenant admins; an empty field is the plan's limit)</summary>
            <form className="quota-form" onSubmit={setQuota}>
              {(
                [
                  ['tokensPerDay', 'Tokens per day', quota.planLimits.tokensPerDay],
                  ['tokensPerMonth', 'Tokens per month', quota.planLimits.tokensPerMonth],
                  ['storageBytes', 'Storage bytes', quota.planLimits.storageBytes],
                  ['concurrentStreams', 'Concurrent answers', quota.planLimits.concurrentStreams],
                ] as const
              ).map(([key, label, planLimit]) => (
                <label key={key}>
                  {label} <span className="muted">(plan {count(planLimit)})</span>
                  <input type="number" min={0} value={form[key]} onChange={(e) => setForm({ ...form, [key]: e.target.value })} />
                </label>
              ))}
              <button type="submit">Set quota</button>
            </form>
          </details>
        </>
      )}
      <ErrorList errors={failures.errors} onDismiss={failures.clear} />
    </section>
  );
}
