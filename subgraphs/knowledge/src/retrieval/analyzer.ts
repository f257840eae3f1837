/** The analyzer lives in the platform kit (platform/src/text/analyzer.ts), shared with the chat subgraph. */
export { analyze, ENGLISH_STOPWORDS, stem, tokenize } from '@jarvis/platform';
