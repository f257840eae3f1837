/** The embedder port and the local hashed embedder live in the platform kit (platform/src/text/embedder.ts), shared with the chat subgraph. */
export { DEFAULT_DIMENSIONS, LocalHashEmbedder, murmur3, type Embedder } from '@jarvis/platform';
