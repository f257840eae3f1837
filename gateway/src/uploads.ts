/**
 * File uploads through the gateway, per the GraphQL multipart request specification: a multipart/form-data
 * POST whose `operations` field is the JSON request, whose `map` field names, for each file field, the
 * variable paths the file goes to, and the files after them. @apollo/gateway forwards JSON variables only,
 * so each file goes to its subgraph inline, as the value of an `Upload` scalar:
 * `{ filename, mediaType, base64 }`. Files are read after the caller is authenticated, each up to a limit.
 */
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';

export interface UploadLimits {
  /** Largest file, in bytes. */
  maxFileBytes: number;
  maxFiles: number;
}

/** What an `Upload` variable holds once the gateway has read the file. */
export interface InlineUpload {
  filename: string;
  mediaType: string;
  base64: string;
}

export async function acceptUploads(app: FastifyInstance, limits: UploadLimits): Promise<void> {
  await app.register(multipart, {
    limits: { fileSize: limits.maxFileBytes, files: limits.maxFiles, fields: 2, fieldSize: 1024 * 1024, parts: limits.maxFiles + 2 },
    throwFileSizeLimit: true,
  });
}

/**
 * Headers a browser sends only after a CORS preflight, as Apollo Router requires them: a cross-site page can
 * post a multipart form without asking, but not with one of these.
 */
const PREFLIGHT_HEADERS = ['apollo-require-preflight', 'x-apollo-operation-name'];

/** The JSON request a multipart upload stands for, files inlined; the body as it is for any other request. */
export async function graphQLBody(request: FastifyRequest): Promise<unknown> {
  if (!request.isMultipart?.()) return request.body;
  if (!PREFLIGHT_HEADERS.some((header) => request.headers[header])) {
    throw badRequest(`a multipart request must carry one of ${PREFLIGHT_HEADERS.join(', ')} (cross-site request forgery prevention)`);
  }
  try {
    return await readMultipart(request);
  } catch (error) {
    // A file over the limit keeps its 413; anything else wrong with the body is the client's 400.
    if ((error as { statusCode?: number }).statusCode) throw error;
    throw badRequest(`the multipart request is malformed: ${(error as Error).message}`);
  }
}

async function readMultipart(request: FastifyRequest): Promise<Record<string, unknown>> {
  let operations: Record<string, unknown> | undefined;
  let map: Record<string, string[]> | undefined;
  for await (const part of request.parts()) {
    if (part.type === 'field') {
      if (part.fieldname === 'operations') operations = parseOperations(part.value);
      else if (part.fieldname === 'map') map = parseMap(part.value);
      continue;
    }
    if (!operations || !map) throw badRequest('the operations and map fields must come before the files');
    const paths = map[part.fieldname];
    if (!paths) throw badRequest(`the map names no paths for file "${part.fieldname}"`);
    const upload: InlineUpload = {
      filename: part.filename,
      mediaType: part.mimetype,
      base64: (await part.toBuffer()).toString('base64'),
    };
    for (const path of paths) place(operations, path, upload);
  }
  if (!operations) throw badRequest('a multipart GraphQL request needs an operations field');
  return operations;
}

/** A request that is not a well-formed upload: 400, before any GraphQL work. */
function badRequest(message: string): Error {
  return Object.assign(new Error(message), { statusCode: 400 });
}

function parseField(value: unknown, field: string): unknown {
  try {
    return JSON.parse(String(value));
  } catch {
    throw badRequest(`the ${field} field is not JSON`);
  }
}

function parseOperations(value: unknown): Record<string, unknown> {
  const operations = parseField(value, 'operations');
  if (typeof operations !== 'object' || operations === null || Array.isArray(operations)) throw badRequest('operations must be a JSON object');
  return operations as Record<string, unknown>;
}

function parseMap(value: unknown): Record<string, string[]> {
  const map = parseField(value, 'map');
  const valid =
    typeof map === 'object' && map !== null && !Array.isArray(map) &&
    Object.values(map).every((paths) => Array.isArray(paths) && paths.every((path) => typeof path === 'string'));
  if (!valid) throw badRequest('map must be an object of file field names to arrays of paths');
  return map as Record<string, string[]>;
}

/** Puts the file at `variables.<…>` of the operation, where the client left null for it. */
function place(operations: Record<string, unknown>, path: string, upload: InlineUpload): void {
  const keys = path.split('.');
  if (keys[0] !== 'variables' || keys.length < 2) throw badRequest(`"${path}" is not a path into the variables`);
  let container = operations;
  for (const key of keys.slice(0, -1)) {
    const next = Object.hasOwn(container, key) ? container[key] : undefined;
    if (typeof next !== 'object' || next === null) throw badRequest(`"${path}" names no place in the operation`);
    container = next as Record<string, unknown>;
  }
  const last = keys.at(-1)!;
  // Own properties only, and only where the client put null: a path cannot reach a prototype.
  if (!Object.hasOwn(container, last) || container[last] !== null) throw badRequest(`"${path}" must be null in operations`);
  container[last] = upload;
}
