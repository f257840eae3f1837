import { DateTime, JSONValue } from '@jarvis/platform/subgraph';
import type { Resolvers } from './generated/schema-types.ts';
import type { RunEvent } from './runs/store.ts';

const userOf = (tenantId: string, userId: string | null) => (userId ? { id: userId, tenant: { id: tenantId } } : null);

export const resolvers: Resolvers = {
  DateTime,
  JSON: JSONValue,
  Query: {
    definition: (_, { id }, ctx) => ctx.definitions.definition(id),
    validateDefinition: (_, { kind, source }, ctx) => ctx.definitions.validate(kind, source),
    run: (_, { id }, ctx) => ctx.runs.run(id),
  },
  Mutation: {
    createDefinition: (_, { input }, ctx) => ctx.definitions.create(input),
    addDefinitionVersion: (_, { input }, ctx) => ctx.definitions.addVersion(input),
    publishDefinition: (_, { input }, ctx) => ctx.labels.publish(input),
    rollbackDefinition: (_, { input }, ctx) => ctx.labels.rollback(input),
    startRun: (_, { input }, ctx) => ctx.runs.start(input),
    approveRun: (_, { input }, ctx) => ctx.runs.approve(input),
    rejectRun: (_, { input }, ctx) => ctx.runs.reject(input),
    cancelRun: (_, { id }, ctx) => ctx.runs.cancel(id),
  },
  Subscription: {
    runEvents: {
      subscribe: (_, { runId, afterSeq }, ctx) => ctx.runs.follow(runId, afterSeq ?? 0),
      resolve: (event: RunEvent) => event,
    },
  },
  Tenant: {
    definitions: (tenant, { kind, first }, ctx) => ctx.definitions.definitionsOf(tenant.id, kind, first),
    runs: (tenant, { status, first }, ctx) => ctx.runs.runsOf(tenant.id, { status }, first),
  },
  Definition: {
    __resolveReference: (ref, ctx) => ctx.definitions.definition(ref.id),
    tenant: (definition) => ({ id: definition.tenantId }),
    createdBy: (definition) => userOf(definition.tenantId, definition.createdById),
    versions: (definition, { first }, ctx) => ctx.definitions.versionsOf(definition, first),
    version: (definition, { number }, ctx) => ctx.definitions.version(definition.tenantId, definition.id, number),
    latestVersion: (definition, _, ctx) => ctx.definitions.latestVersion(definition),
    labels: (definition, _, ctx) => ctx.labels.labelsOf(definition),
    label: (definition, { name }, ctx) => ctx.labels.label(definition, name),
    runs: (definition, { first }, ctx) => ctx.runs.runsOf(definition.tenantId, { definitionId: definition.id }, first),
  },
  Run: {
    __resolveReference: (ref, ctx) => ctx.runs.run(ref.id),
    tenant: (run) => ({ id: run.tenantId }),
    definition: (run, _, ctx) => ctx.definitions.requireDefinition(run.definitionId),
    version: async (run, _, ctx) => (await ctx.definitions.version(run.tenantId, run.definitionId, run.version))!,
    startedBy: (run) => userOf(run.tenantId, run.startedById),
    steps: (run, _, ctx) => ctx.runs.steps(run),
    pendingApproval: (run) => (run.status === 'WAITING' ? run.pendingApproval : null),
    events: (run, { afterSeq, first }, ctx) => ctx.runs.events(run, afterSeq ?? 0, first ?? 200),
  },
  DefinitionVersion: {
    definition: (version, _, ctx) => ctx.definitions.requireDefinition(version.definitionId),
    createdBy: (version) => userOf(version.tenantId, version.createdById),
    workflow: (version) => ('workflow' in version.declared ? version.declared.workflow : null),
    agent: (version) => ('agent' in version.declared ? version.declared.agent : null),
  },
  AgentTools: {
    knowledgeBaseIds: (tools) => tools.knowledgeBases,
  },
  DefinitionLabel: {
    definition: (label, _, ctx) => ctx.definitions.requireDefinition(label.definitionId),
    version: async (label, _, ctx) => (await ctx.definitions.version(label.tenantId, label.definitionId, label.version))!,
    movedBy: (label) => userOf(label.tenantId, label.movedById),
    previousVersion: (label, _, ctx) => ctx.labels.previousVersion(label),
    history: (label, { first }, ctx) => ctx.labels.history(label, first),
  },
  DefinitionLabelMove: {
    movedBy: (move) => userOf(move.tenantId, move.movedById),
  },
};
