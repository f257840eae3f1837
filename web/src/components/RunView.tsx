import { useState } from 'react';
import { useClient, useErrors } from '../api/hooks';
import { CancelRunDocument } from '../gql/graphql';
import { ApprovalBanner } from './ApprovalBanner';
import { ErrorList } from './ErrorList';
import { time } from './format';
import { JsonView } from './JsonView';
import { isEnded, useRun } from './useRun';

const STATUS_TEXT: Record<string, string> = {
  RUNNING: 'Running…',
  WAITING: 'Waiting for approval',
  DONE: 'DONE',
  ERROR: 'ERROR',
  CANCELLED: 'CANCELLED',
};

/**
 * One run, live: its status (announced as it changes), its steps as their events arrive, the approval it waits
 * for with Approve and Reject, Cancel while it has not ended, and how it ended — its output, or its error.
 */
export function RunView({ runId }: { runId: string }) {
  const client = useClient();
  const { run, status, steps, approval, output, error, live, errors, refetch } = useRun(runId);
  const [decided, setDecided] = useState<number | null>(null);
  const [cancelling, setCancelling] = useState(false);
  const failures = useErrors();
  const ended = isEnded(status);

  async function cancel() {
    setCancelling(true);
    const cancelled = (await failures.run(() => client.request(CancelRunDocument, { id: runId })))?.data?.cancelRun;
    setCancelling(false);
    if (cancelled) void refetch();
  }

  return (
    <div className="run-view" data-testid="run-view" data-run-id={runId}>
      <h3>
        Run of {run?.definition.name ?? '…'}
        {run && (
          <span className="muted">
            {' '}
            · version {run.version.number}
            {run.label ? ` (${run.label})` : ''} · started {time(run.startedAt)}
          </span>
        )}{' '}
        {!ended && (
          <span className={live ? 'badge live' : 'badge'} title="runEvents subscription">
            {live ? 'live' : 'not live'}
          </span>
        )}
      </h3>
      <ErrorList errors={errors} />
      <div
        className={`run-status run-status-${(status ?? 'unknown').toLowerCase()}`}
        role="status"
        aria-live="polite"
        aria-atomic="true"
        data-testid="run-status"
        data-status={status ?? ''}
      >
        <strong>{status ? STATUS_TEXT[status] : run === null ? 'No such run' : 'Loading…'}</strong>
        {status === 'ERROR' && error && (
          <div data-testid="run-error" data-code={error.code}>
            <code className="error-code">{error.code}</code> {error.message}
            {error.path && <span className="muted"> at {error.path}</span>}
          </div>
        )}
      </div>
      {status === 'WAITING' && approval && approval.step !== decided && (
        <ApprovalBanner key={approval.step} runId={runId} step={approval.step} name={approval.name} onDecided={() => setDecided(approval.step)} />
      )}
      {status && !ended && (
        <div className="row">
          <button data-testid="run-cancel" type="button" className="secondary danger" disabled={cancelling} onClick={() => void cancel()}>
            Cancel run
          </button>
        </div>
      )}
      <ErrorList errors={failures.errors} onDismiss={failures.clear} />
      <dl className="facts">
        <dt>Input</dt>
        <dd>
          <JsonView value={run?.input} label="input" />
        </dd>
        {status === 'DONE' && (
          <>
            <dt>Output</dt>
            <dd data-testid="run-output">
              <JsonView value={output} />
            </dd>
          </>
        )}
      </dl>
      <table>
        <caption className="visually-hidden">Steps</caption>
        <thead>
          <tr>
            <th>#</th>
            <th>Step</th>
            <th>Kind</th>
            <th>Status</th>
            <th>Output</th>
            <th>Error</th>
          </tr>
        </thead>
        <tbody>
          {steps.map((step) => (
            <tr key={step.number} data-testid="run-step" data-name={step.name} data-status={step.status}>
              <td>{step.number}</td>
              <td>{step.name}</td>
              <td className="muted">{step.kind ?? ''}</td>
              <td>
                <span className={`status status-${step.status.toLowerCase()}`}>{step.status}</span>
                {(step.attempts ?? 1) > 1 && <span className="muted"> ×{step.attempts}</span>}
              </td>
              <td>
                <JsonView value={step.output} />
              </td>
              <td>{step.error && <code title={step.error.message}>{step.error.code}</code>}</td>
            </tr>
          ))}
          {steps.length === 0 && (
            <tr>
              <td colSpan={6} className="muted">
                No step yet.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}
