import type { ExecutionResult, GraphQLSchema, ParseOptions } from 'graphql';
import type { RewrittenOperation } from '../gateway-wrapper.ts';
import type { DocumentRequest } from '../persisted-documents.ts';
import { preparedDocuments } from './documents.ts';
import type { Caller, GatewayPolicy, HttpHead, PolicyOperation } from './policy.ts';

/** One policy's part in one operation: the stage, and what came of it. */
export type PolicyStep =
  | { stage: 'admit'; outcome: 'admitted' | 'refused' }
  | { stage: 'document'; outcome: 'resolved' | 'refused' }
  | { stage: 'operation'; outcome: 'unchanged' | 'narrowed' | 'refused' };

export interface PipelineObserver {
  /** Each policy's step in each operation, as it happens. */
  step?(policy: string, step: PolicyStep): void;
  /** A document parsed and validated (a cache miss, by either transport). */
  validated?(): void;
}

export type Decision =
  | { run: PolicyOperation; narrowed?: RewrittenOperation; complete?: (result: ExecutionResult) => ExecutionResult }
  | { refused: ExecutionResult; http?: HttpHead };

/**
 * The gateway's policies in the order they apply, as one pipeline that every transport runs: admission,
 * the document a request stands for, parsing and validation (once, shared: documents.ts), then each operation
 * before it is planned. Each policy is applied once per operation, whichever transport carried it.
 */
export function gatewayPipeline(policies: readonly GatewayPolicy[], schema: () => GraphQLSchema, observer: PipelineObserver = {}) {
  const observe = (policy: GatewayPolicy, step: PolicyStep) => observer.step?.(policy.name, step);
  const parseOptions: ParseOptions = Object.assign({}, ...policies.map((policy) => policy.parseOptions));
  const validationRules = policies.flatMap((policy) => policy.validationRules ?? []);
  const resolver = policies.find((policy) => policy.resolveDocument);
  const documents = preparedDocuments(schema, parseOptions, validationRules, () => observer.validated?.());

  return {
    parseOptions,
    validationRules,
    /** Apollo Server's documentStore: the documents this pipeline prepared, and those Apollo Server did. */
    documentStore: documents.store,
    prepare: documents.prepare,

    /** Response headers from the policies that admitted the caller; an AppError from the first that did not. */
    async admit(caller: Caller): Promise<Record<string, string>> {
      const headers: Record<string, string> = {};
      for (const policy of policies) {
        if (!policy.admit) continue;
        try {
          Object.assign(headers, await policy.admit(caller));
        } catch (error) {
          observe(policy, { stage: 'admit', outcome: 'refused' });
          throw error;
        }
        observe(policy, { stage: 'admit', outcome: 'admitted' });
      }
      return headers;
    },

    resolveDocument(request: DocumentRequest): string | undefined {
      if (!resolver) return typeof request.query === 'string' ? request.query : undefined;
      try {
        const query = resolver.resolveDocument!(request);
        observe(resolver, { stage: 'document', outcome: 'resolved' });
        return query;
      } catch (error) {
        observe(resolver, { stage: 'document', outcome: 'refused' });
        throw error;
      }
    },

    /**
     * What the operation policies make of an operation: refused (a refusal still passes through the
     * completions of the policies before it, so their errors are reported too), or run as narrowed.
     */
    async decide(operation: PolicyOperation): Promise<Decision> {
      const completions: ((result: ExecutionResult) => ExecutionResult)[] = [];
      const completeAll = (result: ExecutionResult) => completions.reduceRight((done, complete) => complete(done), result);
      let narrowed: RewrittenOperation | undefined;
      for (const policy of policies) {
        if (!policy.operation) continue;
        const step = await policy.operation(operation);
        observe(policy, { stage: 'operation', outcome: !step ? 'unchanged' : 'refused' in step ? 'refused' : 'narrowed' });
        if (!step) continue;
        if ('refused' in step) return { refused: completeAll(step.refused), http: step.http };
        narrowed = step.narrowed;
        operation = { ...operation, ...narrowed };
        completions.push(step.complete);
      }
      return { run: operation, narrowed, complete: completions.length > 0 ? completeAll : undefined };
    },
  };
}

export type GatewayPipeline = ReturnType<typeof gatewayPipeline>;
