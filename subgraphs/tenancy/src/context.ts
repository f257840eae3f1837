import type { BaseContext } from '@jarvis/platform/subgraph';
import type { AccessService, Credentials } from './access/service.ts';
import type { IssuerService } from './issuers/service.ts';
import type { TenancyService } from './tenants/service.ts';

export interface TenancyContext extends BaseContext {
  tenancy: TenancyService;
  access: AccessService;
  credentials: Credentials;
  issuers: IssuerService;
}
