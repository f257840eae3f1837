import { DateTime } from '@jarvis/platform/subgraph';
import type { Resolvers } from './generated/schema-types.ts';

const userOf = (tenantId: string, userId: string | null) => (userId ? { id: userId, tenant: { id: tenantId } } : null);

export const resolvers: Resolvers = {
  DateTime,
  Query: {
    definition: (_, { id }, ctx) => ctx.definitions.definition(id),
    validateDefinition: (_, { kind, source }, ctx) => ctx.definitions.validate(kind, source),
  },
  Mutation: {
    createDefinition: (_, { input }, ctx) => ctx.definitions.create(input),
    addDefinitionVersion: (_, { input }, ctx) => ctx.definitions.addVersion(input),
    publishDefinition: (_, { input }, ctx) => ctx.labels.publish(input),
    rollbackDefinition: (_, { input }, ctx) => ctx.labels.rollback(input),
  },
  Tenant: {
    definitions: (tenant, { kind, first }, ctx) => ctx.definitions.definitionsOf(tenant.id, kind, first),
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
