/** What the gateway and the subgraphs agree on: who calls, what they may do, what plans allow, the events about usage. */
export * from './principal.ts';
export * from './permissions.ts';
export * from './plans.ts';
export * from './usage-events.ts';
export * from './quota-overrides.ts';
