import type { BaseContext } from '@jarvis/platform/subgraph';
import type { DefinitionService } from './definitions/service.ts';
import type { LabelService } from './labels/service.ts';
import type { RunService } from './runs/service.ts';

export interface AgentsContext extends BaseContext {
  definitions: DefinitionService;
  labels: LabelService;
  runs: RunService;
}
