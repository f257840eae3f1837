/** Text analysis and the local hashed embedder, shared by the subgraphs that search (knowledge) and cache answers (chat). */
export * from './analyzer.ts';
export * from './embedder.ts';
export * from './porter.ts';
