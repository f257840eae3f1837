/** What runs add to the agents service's metrics: runs by outcome, how long steps take, runs under way here. */
import { Counter, Gauge, Histogram, LATENCY_BUCKETS, type ServiceMetrics } from '@jarvis/platform/metrics';

export type RunOutcome = 'DONE' | 'ERROR' | 'CANCELLED';

export interface RunMetrics {
  /** Counts a run (or its replay after a restart) under way in this process; call the result when it ends. */
  runStarted(kind: string): (outcome: RunOutcome) => void;
  stepTook(kind: string, seconds: number): void;
}

export function runMetrics({ registry }: ServiceMetrics): RunMetrics {
  const runs = new Counter({
    name: 'jarvis_runs_total',
    help: 'Workflow and agent runs that ended, by kind and outcome (DONE, ERROR, CANCELLED)',
    labelNames: ['kind', 'outcome'] as const,
    registers: [registry],
  });
  const active = new Gauge({
    name: 'jarvis_runs_active',
    help: "Runs this replica's engine is carrying on (running or waiting), by kind",
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  const steps = new Histogram({
    name: 'jarvis_run_step_duration_seconds',
    help: "Checkpointed steps of runs, from start to checkpoint, by the step's kind (call:jarvis.model, call:http, tool:mcp, …)",
    labelNames: ['kind'] as const,
    buckets: [...LATENCY_BUCKETS, 30, 60, 300],
    registers: [registry],
  });
  return {
    runStarted(kind) {
      active.inc({ kind });
      let ended = false;
      return (outcome) => {
        if (ended) return;
        ended = true;
        active.dec({ kind });
        runs.inc({ kind, outcome });
      };
    },
    stepTook: (kind, seconds) => steps.observe({ kind }, seconds),
  };
}
