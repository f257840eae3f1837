/** The environment Jarvis reads, and the services it runs with their default ports. */
export * from './environment.ts';
export * from './services.ts';
