/**
 * The run view: steps appear as runEvents says they start and finish, APPROVAL_NEEDED shows a banner whose
 * Approve and Reject call approveRun / rejectRun with the run's id, and the final status (DONE, or ERROR with its
 * code and message) is announced; a stream cut short resumes after the last seq seen. The fake gateway keeps the
 * run's events and replays those after each subscription's afterSeq, as the agents subgraph does.
 */
import { act, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { RunEventsSubscription, RunFieldsFragment } from '../gql/graphql';
import { FakeGateway, type FakeSubscription } from '../test/fake-gateway';
import { renderSignedIn } from '../test/render';
import { RunView } from './RunView';

type RunEvent = RunEventsSubscription['runEvents'];

const RUN_ID = '7c1f2a3b-0000-4000-8000-000000000001';

const RUN: RunFieldsFragment = {
  id: RUN_ID,
  status: 'RUNNING',
  label: 'production',
  input: { amount: 120 },
  output: null,
  error: null,
  startedAt: '2026-01-05T10:00:00.000Z',
  endedAt: null,
  definition: { id: 'definition-1', name: 'expense-approval', kind: 'WORKFLOW' },
  version: { number: 1 },
  pendingApproval: null,
  steps: [],
};

const event = (seq: number, type: RunEvent['type'], fields: Partial<RunEvent> = {}): RunEvent => ({
  seq,
  type,
  step: null,
  name: null,
  output: null,
  error: null,
  at: new Date(Date.parse('2026-01-05T10:00:00.000Z') + seq * 1000).toISOString(),
  ...fields,
});

/** The run's side of the fake gateway: stored events, replayed to each new RunEvents subscription after its afterSeq. */
class RunServer {
  readonly events: RunEvent[] = [];

  constructor(private readonly gateway: FakeGateway) {
    gateway.onSubscribe = (subscription) => {
      if (subscription.operationName !== 'RunEvents') return;
      const afterSeq = Number(subscription.variables.afterSeq ?? 0);
      for (const stored of this.events.filter((e) => e.seq > afterSeq)) subscription.next({ runEvents: stored });
    };
  }

  get streams(): FakeSubscription[] {
    return this.gateway.subscriptionsTo('RunEvents');
  }

  produce(...events: RunEvent[]): void {
    act(() => {
      for (const e of events) {
        this.events.push(e);
        for (const stream of this.streams.filter((s) => !s.stopped)) stream.next({ runEvents: e });
      }
    });
  }

  async subscribed(count: number): Promise<FakeSubscription> {
    await waitFor(() => expect(this.streams).toHaveLength(count));
    return this.streams[count - 1]!;
  }
}

function setUp(run: RunFieldsFragment = RUN) {
  const gateway = new FakeGateway().install();
  let current = run;
  gateway.answer('Run', () => ({ data: { run: current } }));
  const server = new RunServer(gateway);
  renderSignedIn(<RunView runId={RUN_ID} />);
  return { gateway, server, storeRun: (next: RunFieldsFragment) => (current = next) };
}

const status = () => screen.getByRole('status');
const stepRow = (name: string) => screen.getAllByTestId('run-step').find((row) => row.dataset.name === name)!;

describe('RunView', () => {
  it('shows each step as its events arrive and DONE, prominently, after the DONE event', async () => {
    const { server } = setUp();
    const stream = await server.subscribed(1);
    expect(stream.variables).toEqual({ runId: RUN_ID, afterSeq: 0 });
    await waitFor(() => expect(status()).toHaveTextContent('Running…'));

    server.produce(event(1, 'STARTED'), event(2, 'STEP_STARTED', { step: 1, name: 'prepare' }));
    expect(stepRow('prepare')).toHaveAttribute('data-status', 'RUNNING');
    server.produce(event(3, 'STEP_FINISHED', { step: 1, name: 'prepare', output: { amount: 120 } }));
    expect(stepRow('prepare')).toHaveAttribute('data-status', 'DONE');
    expect(within(stepRow('prepare')).getByText('{"amount":120}')).toBeInTheDocument();
    server.produce(event(0, 'HEARTBEAT'));
    expect(status()).toHaveAttribute('data-status', 'RUNNING');
    expect(screen.getByRole('button', { name: 'Cancel run' })).toBeInTheDocument();

    server.produce(event(4, 'DONE', { output: { approved: true } }));
    expect(status()).toHaveAttribute('data-status', 'DONE');
    expect(status()).toHaveTextContent('DONE');
    expect(status()).toHaveAttribute('aria-live', 'polite');
    expect(screen.getByTestId('run-output')).toHaveTextContent('{"approved":true}');
    expect(screen.queryByRole('button', { name: 'Cancel run' })).not.toBeInTheDocument();
    expect(stream.stopped).toBe(true);
  });

  it('shows a banner on APPROVAL_NEEDED whose Approve calls approveRun with the run id and the comment', async () => {
    const { gateway, server } = setUp();
    const user = userEvent.setup();
    gateway.answer('ApproveRun', () => ({ data: { approveRun: { id: RUN_ID, status: 'WAITING' } } }));
    await server.subscribed(1);
    server.produce(event(1, 'STARTED'), event(2, 'STEP_STARTED', { step: 1, name: 'approval' }), event(3, 'APPROVAL_NEEDED', { step: 1, name: 'approval' }));

    expect(status()).toHaveAttribute('data-status', 'WAITING');
    const banner = screen.getByTestId('approval-banner');
    expect(banner).toHaveTextContent('Waiting for approval at step 1 (approval)');
    await user.type(within(banner).getByRole('textbox', { name: 'Comment (optional)' }), 'within budget');
    await user.click(within(banner).getByRole('button', { name: 'Approve' }));

    await waitFor(() => expect(gateway.requests.map((r) => r.operationName)).toContain('ApproveRun'));
    const approve = gateway.requests.find((r) => r.operationName === 'ApproveRun')!;
    expect(approve.variables).toEqual({ input: { runId: RUN_ID, comment: 'within budget' } });
    await waitFor(() => expect(screen.queryByTestId('approval-banner')).not.toBeInTheDocument());

    server.produce(event(4, 'APPROVED', { step: 1, name: 'approval' }), event(5, 'STEP_FINISHED', { step: 1, name: 'approval' }), event(6, 'DONE'));
    expect(status()).toHaveAttribute('data-status', 'DONE');
    expect(gateway.requests.some((r) => r.operationName === 'RejectRun')).toBe(false);
  });

  it('calls rejectRun on Reject, and shows ERROR with its code and message', async () => {
    const { gateway, server } = setUp({ ...RUN, status: 'WAITING', pendingApproval: { step: 1, expiresAt: null } });
    const user = userEvent.setup();
    gateway.answer('RejectRun', () => ({ data: { rejectRun: { id: RUN_ID, status: 'WAITING' } } }));
    // Before any event, the run as read: it waits.
    const banner = await screen.findByTestId('approval-banner');
    await user.click(within(banner).getByRole('button', { name: 'Reject' }));
    await waitFor(() => expect(gateway.requests.find((r) => r.operationName === 'RejectRun')?.variables).toEqual({ input: { runId: RUN_ID, comment: null } }));

    await server.subscribed(1);
    server.produce(event(1, 'STARTED'), event(2, 'APPROVAL_NEEDED', { step: 1, name: 'approval' }), event(3, 'REJECTED', { step: 1, name: 'approval' }));
    server.produce(event(4, 'ERROR', { error: { code: 'APPROVAL_REJECTED', message: 'the approval was rejected', path: '/do/1/approval' } }));
    expect(status()).toHaveAttribute('data-status', 'ERROR');
    expect(screen.getByTestId('run-error')).toHaveTextContent('APPROVAL_REJECTED the approval was rejected at /do/1/approval');
  });

  it('when the stream completes before the run ends, subscribes again after the last seq it saw', async () => {
    const { server } = setUp();
    const first = await server.subscribed(1);
    server.produce(event(1, 'STARTED'), event(2, 'STEP_STARTED', { step: 1, name: 'prepare' }));
    act(() => first.complete());
    server.produce(event(3, 'STEP_FINISHED', { step: 1, name: 'prepare' }));

    const second = await server.subscribed(2);
    expect(second.variables).toEqual({ runId: RUN_ID, afterSeq: 2 });
    await waitFor(() => expect(stepRow('prepare')).toHaveAttribute('data-status', 'DONE'));
    server.produce(event(4, 'DONE'));
    expect(status()).toHaveAttribute('data-status', 'DONE');
    expect(screen.getAllByTestId('run-step')).toHaveLength(1);
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
  });
});
