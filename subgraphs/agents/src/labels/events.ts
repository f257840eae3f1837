import { randomUUID } from 'node:crypto';
import type { BusEvent } from '@jarvis/platform/bus';
import type { TenantIsolation } from '@jarvis/platform/contracts';
import type { DefinitionKind } from '../validation/index.ts';
import type { LabelAction } from './store.ts';

/** The topic a label's moves are announced on: whatever runs a label's version learns when it points elsewhere. */
export const LABEL_MOVED_TOPIC = 'agents.label.moved';

export interface LabelMoved {
  definitionId: string;
  definitionName: string;
  kind: DefinitionKind;
  label: string;
  action: LabelAction;
  fromVersion: number | null;
  toVersion: number;
  /** Where the tenant's data lives, so a consumer reads it in the right schema. */
  isolation: TenantIsolation;
}

export function labelMovedEvent(tenantId: string, payload: LabelMoved): BusEvent {
  return { id: randomUUID(), type: LABEL_MOVED_TOPIC, tenantId, occurredAt: new Date().toISOString(), payload: { ...payload } };
}
