import { ANONYMOUS } from '@jarvis/platform/contracts';
import { withOperation, wrapExecutor, type GatewayInterface, type GatewayRequestContext } from '../gateway-wrapper.ts';
import type { GatewayPipeline } from './pipeline.ts';
import type { Caller, HttpHead } from './policy.ts';

/**
 * The gateway as Apollo Server runs it (HTTP, and queries and mutations over WebSocket): every operation is
 * decided on by the pipeline's operation policies before it is planned.
 */
export function pipelineGateway(gateway: GatewayInterface, pipeline: GatewayPipeline): GatewayInterface {
  return wrapExecutor(gateway, (execute) => async (requestContext) => {
    const caller = requestContext.context as Partial<Caller>;
    const decision = await pipeline.decide({
      schema: requestContext.schema,
      document: requestContext.document,
      operation: requestContext.operation,
      operationName: requestContext.request.operationName,
      queryHash: requestContext.queryHash,
      variables: requestContext.request.variables ?? {},
      principal: caller.principal ?? ANONYMOUS,
      ip: caller.ip ?? 'unknown',
    });
    if ('refused' in decision) {
      setHead(requestContext, decision.http);
      return decision.refused;
    }
    const result = await execute(decision.narrowed ? withOperation(requestContext, decision.narrowed) : requestContext);
    return decision.complete ? decision.complete(result) : result;
  });
}

/** The same HTTP head Apollo Server answers with, where the request came over HTTP. */
function setHead(requestContext: GatewayRequestContext, head: HttpHead | undefined) {
  const http = requestContext.response?.http;
  if (!head || !http) return;
  http.status = head.status;
  for (const [name, value] of Object.entries(head.headers)) http.headers.set(name, value);
}
