import type { BaseContext } from '@jarvis/platform/subgraph';
import type { UsageService } from './ledger/service.ts';
import type { QuotaService } from './quotas/service.ts';

export interface UsageContext extends BaseContext {
  usage: UsageService;
  quotas: QuotaService;
}
