/** What a subgraph is built with: the mercurius server factory, and the parts its resolvers share. */
export * from './server.ts';
export * from './loaders.ts';
export * from './scalars.ts';
export * from './validation.ts';
export * from './checked-input.ts';
export * from './field-policies.ts';
