/**
 * A gateway policy: one concern (persisted documents, document limits, the plan's rate, metering,
 * authorization, field rate limits, …) stated as hooks on the stages every operation passes through, whatever
 * carried it (HTTP, WebSocket). The pipeline (pipeline.ts) runs the stages in order and, within each, the
 * policies in the order the gateway lists them.
 */
import type { DocumentNode, ExecutionResult, GraphQLSchema, OperationDefinitionNode, ParseOptions, ValidationRule } from 'graphql';
import type { Principal } from '@jarvis/platform/contracts';
import type { RewrittenOperation } from '../gateway-wrapper.ts';
import type { DocumentRequest } from '../persisted-documents.ts';

/** Who is asking: the authenticated principal and the client's address (past trusted proxies). */
export interface Caller {
  principal: Principal;
  ip: string;
}

/** An operation about to be planned: parsed, validated, its operation picked, its variables as sent. */
export interface PolicyOperation extends Caller {
  schema: GraphQLSchema;
  document: DocumentNode;
  operation: OperationDefinitionNode;
  operationName: string | null | undefined;
  queryHash: string;
  variables: Record<string, unknown>;
}

/** The HTTP status and headers a refusal asks for, where the transport has them. */
export interface HttpHead {
  status: number;
  headers: Record<string, string>;
}

export type OperationStep =
  /** Planned without what the policy took out; `complete` puts its answers (nulls, errors) into the result. */
  | { narrowed: RewrittenOperation; complete: (result: ExecutionResult) => ExecutionResult }
  /** Not planned at all: this is the answer. */
  | { refused: ExecutionResult; http?: HttpHead };

export interface GatewayPolicy {
  readonly name: string;
  /** Admission, before the document is read: refuses with an AppError; may answer with response headers. */
  admit?(caller: Caller): Promise<Record<string, string> | void>;
  /** The document text a request stands for: sent, or named by the hash of a trusted one (undefined: none). */
  resolveDocument?(request: DocumentRequest): string | undefined;
  /** How every transport parses and validates documents. */
  readonly parseOptions?: ParseOptions;
  readonly validationRules?: readonly ValidationRule[];
  /** An operation before it is planned: unchanged (undefined), narrowed, or refused. */
  operation?(operation: PolicyOperation): Promise<OperationStep | undefined> | OperationStep | undefined;
}
