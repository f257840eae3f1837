/** DSL durations: `{ days, hours, minutes, seconds, milliseconds }` or an ISO 8601 duration such as PT1H30M. */
const UNIT_MS = { days: 86_400_000, hours: 3_600_000, minutes: 60_000, seconds: 1000, milliseconds: 1 } as const;
const ISO = /^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

export function durationMs(duration: unknown): number | undefined {
  if (typeof duration === 'string') {
    const match = ISO.exec(duration);
    if (!match) return undefined;
    const [, days = '0', hours = '0', minutes = '0', seconds = '0'] = match;
    return Number(days) * UNIT_MS.days + Number(hours) * UNIT_MS.hours + Number(minutes) * UNIT_MS.minutes + Number(seconds) * UNIT_MS.seconds;
  }
  if (typeof duration !== 'object' || duration === null) return undefined;
  let total = 0;
  for (const [unit, ms] of Object.entries(UNIT_MS)) {
    const value = (duration as Record<string, unknown>)[unit];
    if (typeof value === 'number') total += value * ms;
  }
  return total;
}

/** A task's or workflow's `timeout: { after }`, in milliseconds. */
export function timeoutMs(timeout: unknown): number | undefined {
  if (typeof timeout !== 'object' || timeout === null) return undefined;
  return durationMs((timeout as { after?: unknown }).after);
}
