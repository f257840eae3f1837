/** What every service's HTTP side is made of (the gateway's whole; a subgraph's around mercurius). */
export * from './app.ts';
export * from './health-and-metrics.ts';
export * from './request-observation.ts';
