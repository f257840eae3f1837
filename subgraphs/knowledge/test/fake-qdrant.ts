/**
 * A local server speaking Qdrant's REST protocol, for the endpoints the Qdrant vector store calls: collection
 * exists / get / create, payload index create, points upsert, query and delete by filter. Exact cosine search
 * over points in memory, filters with must / should / must_not, match value / any and is_empty. Anything else
 * it is sent is refused with a 400, so the adapter cannot come to depend on something this fake only pretends.
 */
import Fastify, { type FastifyReply } from 'fastify';

type Payload = Record<string, unknown>;

interface Point {
  id: string | number;
  vector: number[];
  payload: Payload;
}

interface Collection {
  size: number;
  points: Map<string | number, Point>;
  payloadSchema: Record<string, unknown>;
}

interface Filter {
  must?: Condition | Condition[];
  should?: Condition | Condition[];
  must_not?: Condition | Condition[];
}

type Condition = Filter & {
  key?: string;
  match?: { value?: unknown; any?: unknown[] };
  is_empty?: { key: string };
};

class WrongInput extends Error {}

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

export interface FakeQdrant {
  url: string;
  close(): Promise<void>;
}

export async function startFakeQdrant(): Promise<FakeQdrant> {
  const collections = new Map<string, Collection>();
  let operationId = 0;
  // Qdrant accepts requests up to 32 MB.
  const app = Fastify({ bodyLimit: 32 * 1024 * 1024 });
  const started = performance.now();
  const ok = (reply: FastifyReply, result: unknown) =>
    reply.send({ result, status: 'ok', time: (performance.now() - started) / 1000 });
  const updated = (reply: FastifyReply) => ok(reply, { operation_id: ++operationId, status: 'completed' });

  function collectionOf(name: string): Collection {
    const collection = collections.get(name);
    if (!collection) throw Object.assign(new Error(`Not found: Collection \`${name}\` doesn't exist!`), { statusCode: 404 });
    return collection;
  }

  app.setErrorHandler((error: Error & { statusCode?: number }, _request, reply) => {
    const status = error instanceof WrongInput ? 400 : (error.statusCode ?? 500);
    const message = error instanceof WrongInput ? `Wrong input: ${error.message}` : error.message;
    return reply.code(status).send({ status: { error: message }, time: 0 });
  });

  app.get<{ Params: { name: string } }>('/collections/:name/exists', (request, reply) =>
    ok(reply, { exists: collections.has(request.params.name) }),
  );

  app.get<{ Params: { name: string } }>('/collections/:name', (request, reply) =>
    ok(reply, collectionInfo(collectionOf(request.params.name))),
  );

  app.put<{ Params: { name: string }; Body: { vectors?: { size?: number; distance?: string } } }>(
    '/collections/:name',
    (request, reply) => {
      const { name } = request.params;
      if (collections.has(name)) {
        return reply.code(409).send({ status: { error: `Wrong input: Collection \`${name}\` already exists!` }, time: 0 });
      }
      const { size, distance } = request.body.vectors ?? {};
      if (!Number.isInteger(size) || size! < 1) throw new WrongInput('vectors.size must be a positive integer');
      if (distance !== 'Cosine') throw new WrongInput(`this fake scores by Cosine only, not ${distance}`);
      collections.set(name, { size: size!, points: new Map(), payloadSchema: {} });
      return ok(reply, true);
    },
  );

  app.put<{ Params: { name: string }; Body: { field_name: string; field_schema: unknown } }>(
    '/collections/:name/index',
    (request, reply) => {
      const collection = collectionOf(request.params.name);
      const { field_name, field_schema } = request.body;
      const params = typeof field_schema === 'object' ? field_schema : undefined;
      const dataType = params ? (params as { type: string }).type : field_schema;
      collection.payloadSchema[field_name] = { data_type: dataType, ...(params ? { params } : {}), points: collection.points.size };
      return updated(reply);
    },
  );

  app.put<{ Params: { name: string }; Body: { points: Point[] } }>('/collections/:name/points', (request, reply) => {
    const collection = collectionOf(request.params.name);
    const points = request.body.points.map((point) => validPoint(point, collection.size));
    for (const point of points) collection.points.set(point.id, point);
    return updated(reply);
  });

  app.post<{
    Params: { name: string };
    Body: { query: number[] | { nearest: number[] }; filter?: Filter; limit?: number; with_payload?: boolean | string[] };
  }>('/collections/:name/points/query', (request, reply) => {
    const collection = collectionOf(request.params.name);
    const { query, filter, limit = 10, with_payload = false } = request.body;
    const vector = Array.isArray(query) ? query : query.nearest;
    if (vector?.length !== collection.size) {
      throw new WrongInput(`Vector dimension error: expected dim: ${collection.size}, got ${vector?.length}`);
    }
    const scored = [...collection.points.values()]
      .filter((point) => !filter || matchesFilter(point.payload, filter))
      .map((point) => ({ point, score: cosine(vector, point.vector) }))
      .sort((a, b) => b.score - a.score)
      .slice(0, limit);
    return ok(reply, {
      points: scored.map(({ point, score }) => ({
        id: point.id,
        version: operationId,
        score,
        payload: selectPayload(point.payload, with_payload),
      })),
    });
  });

  app.post<{ Params: { name: string }; Body: { filter?: Filter; points?: unknown } }>(
    '/collections/:name/points/delete',
    (request, reply) => {
      const collection = collectionOf(request.params.name);
      const { filter } = request.body;
      if (!filter) throw new WrongInput('this fake deletes by filter only');
      for (const [id, point] of collection.points) {
        if (matchesFilter(point.payload, filter)) collection.points.delete(id);
      }
      return updated(reply);
    },
  );

  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url: address, close: () => app.close() };
}

function collectionInfo(collection: Collection) {
  return {
    status: 'green',
    optimizer_status: 'ok',
    indexed_vectors_count: 0,
    points_count: collection.points.size,
    segments_count: 1,
    config: {
      params: {
        vectors: { size: collection.size, distance: 'Cosine' },
        shard_number: 1,
        replication_factor: 1,
        write_consistency_factor: 1,
        on_disk_payload: true,
      },
      hnsw_config: { m: 16, ef_construct: 100, full_scan_threshold: 10000 },
      optimizer_config: { deleted_threshold: 0.2, vacuum_min_vector_number: 1000, default_segment_number: 0, flush_interval_sec: 5 },
      quantization_config: null,
    },
    payload_schema: collection.payloadSchema,
  };
}

/** Qdrant's point ids are unsigned integers or UUIDs, which it answers with in lower-case hyphenated form. */
function validPoint(point: Point, size: number): Point {
  const { id, vector, payload } = point;
  if (!Array.isArray(vector) || vector.length !== size) {
    throw new WrongInput(`Vector dimension error: expected dim: ${size}, got ${Array.isArray(vector) ? vector.length : 'none'}`);
  }
  if (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0) return { id, vector, payload: payload ?? {} };
  if (typeof id === 'string' && UUID.test(id)) return { id: hyphenated(id.toLowerCase()), vector, payload: payload ?? {} };
  throw new WrongInput(`Unable to parse point id ${JSON.stringify(id)}: an unsigned integer or a UUID`);
}

function hyphenated(uuid: string): string {
  const hex = uuid.replaceAll('-', '');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function listOf<T>(value: T | T[] | undefined): T[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

function matchesFilter(payload: Payload, filter: Filter): boolean {
  const should = listOf(filter.should);
  return (
    listOf(filter.must).every((condition) => matchesCondition(payload, condition)) &&
    (should.length === 0 || should.some((condition) => matchesCondition(payload, condition))) &&
    !listOf(filter.must_not).some((condition) => matchesCondition(payload, condition))
  );
}

/** A payload field holding an array matches when any of its values does, as in Qdrant. */
function matchesCondition(payload: Payload, condition: Condition): boolean {
  if (condition.is_empty) return listOf(payload[condition.is_empty.key]).length === 0;
  if (condition.key !== undefined && condition.match) {
    const values = listOf(payload[condition.key]);
    if ('value' in condition.match) return values.includes(condition.match.value);
    if (Array.isArray(condition.match.any)) return values.some((value) => condition.match!.any!.includes(value));
    throw new WrongInput(`this fake matches by value or any, not ${JSON.stringify(condition.match)}`);
  }
  if (condition.must || condition.should || condition.must_not) return matchesFilter(payload, condition);
  throw new WrongInput(`this fake does not know the condition ${JSON.stringify(condition)}`);
}

function selectPayload(payload: Payload, selection: boolean | string[]): Payload | null {
  if (selection === true) return payload;
  if (selection === false) return null;
  return Object.fromEntries(Object.entries(payload).filter(([key]) => selection.includes(key)));
}

/** Cosine similarity, as Qdrant's Cosine distance scores it (and as tests compute exact neighbours). */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let normA = 0;
  let normB = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    normA += a[i]! * a[i]!;
    normB += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(normA * normB);
}
