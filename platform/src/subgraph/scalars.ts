import { GraphQLScalarType, Kind } from 'graphql';
import { badUserInput } from '../errors.ts';

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

/** A file as the gateway hands it on from a multipart upload (gateway/src/uploads.ts). */
export interface Upload {
  filename: string;
  mediaType: string;
  content: Buffer;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function parseUpload(value: unknown): Upload {
  const { filename, mediaType, base64 } = (value ?? {}) as Record<string, unknown>;
  const valid = typeof filename === 'string' && typeof mediaType === 'string' && typeof base64 === 'string' && BASE64.test(base64);
  if (!valid) throw badUserInput('Upload takes a file sent as a multipart request (GraphQL multipart request specification)');
  return { filename, mediaType, content: Buffer.from(base64, 'base64') };
}

/** A file in a multipart request; the gateway inlines it as `{ filename, mediaType, base64 }`. */
export const Upload = new GraphQLScalarType<Upload, never>({
  name: 'Upload',
  description: 'A file sent as a multipart request (GraphQL multipart request specification)',
  serialize: () => {
    throw new Error('Upload is an input type');
  },
  parseValue: parseUpload,
  parseLiteral: () => parseUpload(undefined),
});

/** Any JSON value, given and returned as it is (objects, arrays, strings, numbers, booleans, null). */
export const JSONValue = new GraphQLScalarType<unknown, unknown>({
  name: 'JSON',
  description: 'Any JSON value: an object, array, string, number, boolean or null.',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: function literal(ast, variables): unknown {
    switch (ast.kind) {
      case Kind.STRING:
      case Kind.BOOLEAN:
        return ast.value;
      case Kind.INT:
      case Kind.FLOAT:
        return Number(ast.value);
      case Kind.NULL:
        return null;
      case Kind.LIST:
        return ast.values.map((value) => literal(value, variables));
      case Kind.OBJECT:
        return Object.fromEntries(ast.fields.map((field) => [field.name.value, literal(field.value, variables)]));
      case Kind.VARIABLE:
        return variables?.[ast.name.value];
      default:
        throw badUserInput('not a JSON value');
    }
  },
});
