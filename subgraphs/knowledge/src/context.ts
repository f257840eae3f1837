import type { BaseContext } from '@jarvis/platform/subgraph';
import type { DocumentService } from './documents/service.ts';
import type { KnowledgeBaseService } from './knowledge-bases/service.ts';
import type { SearchService } from './search/service.ts';

export interface KnowledgeContext extends BaseContext {
  knowledgeBases: KnowledgeBaseService;
  documents: DocumentService;
  searches: SearchService;
}
