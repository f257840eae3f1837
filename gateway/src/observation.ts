import type { ApolloServerPlugin } from '@apollo/server';
import { errorCodeOf } from '@jarvis/platform/errors';
import type { OperationContext } from './subscriptions/websocket.ts';

/** Names the request's observation (metrics, span) after its operation and records its errors' codes. */
export function observationPlugin(): ApolloServerPlugin<OperationContext> {
  return {
    async requestDidStart({ contextValue }) {
      const observation = contextValue.observation;
      if (!observation) return;
      return {
        async didResolveOperation({ operationName, operation }) {
          observation.operation = operationName;
          if (operation) observation.span?.setAttribute('graphql.operation.type', operation.operation);
        },
        async didEncounterErrors({ errors }) {
          observation.errorCodes.push(...errors.map(errorCodeOf));
        },
      };
    },
  };
}
