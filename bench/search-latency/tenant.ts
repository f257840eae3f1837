/** The one tenant the search-latency bench fills and searches: its knowledge bases and the member who reads them. */
import { BUILT_IN_ROLES, type Principal } from '@jarvis/platform/contracts';
import { uuidOf } from '@jarvis/platform/ids';

export const KNOWLEDGE_BASES = 4;

/** The bench's own ids: the same on every run, apart from any other's. */
export const idOf = (name: string) => uuidOf(`search-latency:${name}`);

export const TENANT_ID = idOf('tenant');
export const KNOWLEDGE_BASE_IDS = Array.from({ length: KNOWLEDGE_BASES }, (_, i) => idOf(`knowledge-base:${i}`));
/** A member of the tenant who may read (viewer): what searching asks for. */
export const READER: Principal = {
  tenantId: TENANT_ID,
  userId: idOf('reader'),
  roles: ['viewer'],
  scopes: [],
  permissions: [...BUILT_IN_ROLES.viewer!],
  isolation: 'SHARED',
};
