import { useId, useState } from 'react';
import { useClient, useErrors } from '../api/hooks';
import { ApproveRunDocument, RejectRunDocument } from '../gql/graphql';
import { ErrorList } from './ErrorList';

interface Props {
  runId: string;
  /** The step that waits, by number and name. */
  step: number;
  name: string | null;
  /** The decision was taken: the run goes on (its events say how). */
  onDecided: () => void;
}

/** The run waits for an approval: approve or reject it, with an optional comment. */
export function ApprovalBanner({ runId, step, name, onDecided }: Props) {
  const client = useClient();
  const id = useId();
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState(false);
  const failures = useErrors();

  async function decide(approve: boolean) {
    setBusy(true);
    const input = { runId, comment: comment.trim() || null };
    const decided = approve
      ? (await failures.run(() => client.request(ApproveRunDocument, { input })))?.data?.approveRun
      : (await failures.run(() => client.request(RejectRunDocument, { input })))?.data?.rejectRun;
    setBusy(false);
    if (decided) onDecided();
  }

  return (
    <div className="approval" role="region" aria-labelledby={`${id}-title`} data-testid="approval-banner" data-step={step}>
      <strong id={`${id}-title`}>
        Waiting for approval at step {step}
        {name ? ` (${name})` : ''}
      </strong>
      <div className="row">
        <label htmlFor={`${id}-comment`}>Comment (optional)</label>
        <input id={`${id}-comment`} data-testid="approval-comment" value={comment} onChange={(e) => setComment(e.target.value)} maxLength={2000} />
        <button data-testid="run-approve" type="button" disabled={busy} onClick={() => void decide(true)}>
          Approve
        </button>
        <button data-testid="run-reject" type="button" className="secondary danger" disabled={busy} onClick={() => void decide(false)}>
          Reject
        </button>
      </div>
      <ErrorList errors={failures.errors} onDismiss={failures.clear} />
    </div>
  );
}
