import { GraphQLScalarType, Kind } from 'graphql';
import { badUserInput } from './errors.ts';

function parseDateTime(value: unknown): Date {
  const date = typeof value === 'string' ? new Date(value) : undefined;
  if (!date || Number.isNaN(date.getTime())) throw badUserInput(`DateTime must be an ISO-8601 string`);
  return date;
}

/** RFC 3339 timestamps in UTC, shared by every subgraph that declares `scalar DateTime`. */
export const DateTime = new GraphQLScalarType<Date, string>({
  name: 'DateTime',
  description: 'An RFC 3339 timestamp in UTC',
  serialize: (value) => (value instanceof Date ? value : parseDateTime(value)).toISOString(),
  parseValue: parseDateTime,
  parseLiteral: (ast) => parseDateTime(ast.kind === Kind.STRING ? ast.value : undefined),
});
