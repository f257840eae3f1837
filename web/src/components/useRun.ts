/**
 * A run as it goes: read once (Run), then followed event by event over runEvents (graphql-ws). A stream that ends
 * before DONE, ERROR or CANCELLED is picked up again after the last seq seen, with no gap and no repeat — as Chat
 * follows answerStream.
 */
import { useEffect, useReducer, useState } from 'react';
import type { ApiErrorInfo } from '../api/errors';
import { useClient, useQuery } from '../api/hooks';
import {
  RunDocument,
  RunEventsDocument,
  type RunErrorFieldsFragment,
  type RunEventsSubscription,
  type RunFieldsFragment,
  type RunStatus,
  type RunStepStatus,
} from '../gql/graphql';

type RunEvent = RunEventsSubscription['runEvents'];

export interface StepView {
  number: number;
  name: string;
  status: RunStepStatus;
  kind?: string;
  attempts?: number;
  output?: unknown;
  error?: RunErrorFieldsFragment | null;
}

/** What the events told so far. */
interface Followed {
  /** The last seq applied; 0 before the first event. */
  lastSeq: number;
  status: RunStatus | null;
  steps: StepView[];
  approval: { step: number; name: string | null } | null;
  output: unknown;
  error: RunErrorFieldsFragment | null;
}

const NOTHING_YET: Followed = { lastSeq: 0, status: null, steps: [], approval: null, output: null, error: null };
const TERMINAL: readonly string[] = ['DONE', 'ERROR', 'CANCELLED'];
export const isEnded = (status: string | null | undefined): boolean => TERMINAL.includes(status ?? '');

/** How many times a stream that ended before the run did is picked up again in a row. */
const RESUMES = 5;

function withStep(steps: StepView[], number: number, change: Omit<Partial<StepView>, 'name'> & { name?: string | null }): StepView[] {
  const { name, ...rest } = change;
  if (!steps.some((step) => step.number === number)) return [...steps, { number, name: name ?? '', status: 'RUNNING', ...rest }];
  return steps.map((step) => (step.number === number ? { ...step, ...rest, name: name ?? step.name } : step));
}

/** Applies one event (events come in seq order; one already applied is ignored). */
function apply(state: Followed, event: RunEvent): Followed {
  if (event.type === 'HEARTBEAT' || event.seq <= state.lastSeq) return state;
  const next: Followed = { ...state, lastSeq: event.seq };
  const step = event.step ?? 0;
  switch (event.type) {
    case 'STARTED':
      return { ...next, status: 'RUNNING' };
    case 'STEP_STARTED':
      return { ...next, steps: withStep(state.steps, step, { name: event.name, status: 'RUNNING' }) };
    case 'STEP_FINISHED':
      return { ...next, steps: withStep(state.steps, step, { name: event.name, status: 'DONE', output: event.output }) };
    case 'STEP_FAILED':
      return { ...next, steps: withStep(state.steps, step, { name: event.name, status: 'ERROR', error: event.error }) };
    case 'APPROVAL_NEEDED':
      return { ...next, status: 'WAITING', approval: { step, name: event.name }, steps: withStep(state.steps, step, { name: event.name, status: 'WAITING' }) };
    case 'APPROVED':
    case 'REJECTED':
      return { ...next, status: 'RUNNING', approval: null, steps: withStep(state.steps, step, { name: event.name, status: 'RUNNING' }) };
    case 'DONE':
    case 'ERROR':
    case 'CANCELLED': {
      // As the service ends a run: a step still under way or waiting is CANCELLED.
      const steps = state.steps.map((s) => (s.status === 'RUNNING' || s.status === 'WAITING' ? { ...s, status: 'CANCELLED' as const } : s));
      return { ...next, status: event.type, approval: null, steps, output: event.output ?? null, error: event.error ?? null };
    }
  }
}

export interface RunState {
  /** The run as last read (its definition, version, input…); undefined until read, null when there is none. */
  run: RunFieldsFragment | null | undefined;
  status: RunStatus | null;
  steps: StepView[];
  approval: { step: number; name: string | null } | null;
  output: unknown;
  error: RunErrorFieldsFragment | null;
  /** The runEvents subscription is open. */
  live: boolean;
  errors: ApiErrorInfo[];
  refetch: () => Promise<void>;
}

export function useRun(runId: string): RunState {
  const client = useClient();
  const { data, errors, refetch } = useQuery(RunDocument, { id: runId });
  const [followed, dispatch] = useReducer(apply, NOTHING_YET);
  const [live, setLive] = useState(false);
  const [streamErrors, setStreamErrors] = useState<ApiErrorInfo[]>([]);

  useEffect(() => {
    let lastSeq = 0;
    let finished = false;
    let resumes = 0;
    let stop = () => {};
    const end = () => {
      finished = true;
      stop();
      setLive(false);
    };
    const resume = (failure?: ApiErrorInfo[]) => {
      if (finished) return;
      setLive(false);
      if (resumes++ < RESUMES) {
        setTimeout(() => !finished && start(), 300 * resumes);
        return;
      }
      end();
      setStreamErrors(failure ?? [{ message: 'the run events stream ended early', code: 'STREAM_ENDED' }]);
    };
    const start = () => {
      setLive(true);
      stop = client.subscribe(RunEventsDocument, { runId, afterSeq: lastSeq }, {
        next: ({ data: received, errors: failure }) => {
          if (failure?.length) {
            end();
            setStreamErrors(failure);
            return;
          }
          const event = received?.runEvents;
          // A heartbeat (seq 0) says the stream is alive; after a reconnection an event may come again: each seq counts once.
          if (!event || event.type === 'HEARTBEAT' || event.seq <= lastSeq) return;
          lastSeq = event.seq;
          resumes = 0;
          dispatch(event);
          // The run as stored, for what the events do not say (the waiting step's kind, when the approval expires).
          if (event.type === 'APPROVAL_NEEDED') void refetch();
          if (isEnded(event.type)) {
            end();
            void refetch();
          }
        },
        error: (failure) => resume(failure),
        complete: () => resume(),
      });
    };
    start();
    return () => {
      finished = true;
      stop();
    };
  }, [client, runId]); // eslint-disable-line react-hooks/exhaustive-deps

  const run = data === undefined ? undefined : (data?.run ?? null);
  // The events are newer than the read, unless the read already saw the run end.
  const fromRead = !!run && (isEnded(run.status) || followed.lastSeq === 0);
  const stored = new Map((run?.steps ?? []).map((step) => [step.number, step]));
  const steps = fromRead
    ? run.steps
    : followed.steps.map((step) => ({ ...step, kind: stored.get(step.number)?.kind, attempts: stored.get(step.number)?.attempts }));
  const pending = run?.pendingApproval;
  return {
    run,
    status: fromRead ? run.status : followed.status,
    steps,
    approval: fromRead ? (pending ? { step: pending.step, name: stored.get(pending.step)?.name ?? null } : null) : followed.approval,
    output: fromRead ? run.output : followed.output,
    error: fromRead ? run.error : followed.error,
    live,
    errors: [...errors, ...streamErrors],
    refetch,
  };
}
