import type { BaseContext } from '@jarvis/platform/subgraph';
import type { AnswerService } from './answers/service.ts';
import type { CompletionService } from './completions/service.ts';
import type { ConversationService } from './conversations/service.ts';

export interface ChatContext extends BaseContext {
  conversations: ConversationService;
  answers: AnswerService;
  completions: CompletionService;
}
