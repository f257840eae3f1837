/**
 * The console's GraphQL client for one signed-in session, over two transports, with generated typed documents
 * only (each names its persisted document by hash; see documents.ts):
 *
 * - HTTP: `POST /graphql` on this origin, JSON `{ operationName, query?, variables, documentId, extensions }`,
 *   `Authorization: Bearer <access token>`; files as a GraphQL multipart request (operations, map, files).
 * - WebSocket: graphql-ws (`graphql-transport-ws`) on `ws(s)://<this host>/graphql`, the token in
 *   `connection_init` as `{ authorization: 'Bearer <access token>' }`, the same payload per subscription.
 *
 * The access token is renewed with the refresh token shortly before it expires, and once more when the gateway
 * answers UNAUTHENTICATED.
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { createClient, type Client } from 'graphql-ws/client';
import { requestFor } from './documents';
import { ApiError, toErrorInfos, type ApiErrorInfo } from './errors';
import { refreshSession, type Session } from './session';

export const GRAPHQL_PATH = '/graphql';
/** graphql-ws's address: /graphql on this host, `wss:` when the page is `https:`. */
export const graphqlSocketUrl = (): string => `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${GRAPHQL_PATH}`;
/** Renew the access token when it has less than this left. */
const RENEW_BEFORE_MS = 60_000;

export interface Result<TData> {
  data?: TData | null;
  errors?: ApiErrorInfo[];
}

export interface Sink<TData> {
  next(result: Result<TData>): void;
  error(errors: ApiErrorInfo[]): void;
  complete(): void;
}

/** The variables argument: optional for operations without variables, required otherwise. */
export type VariablesArg<TVariables> = TVariables extends Record<string, never> ? [variables?: TVariables] : [variables: TVariables];

export class JarvisClient {
  private session: Session;
  private renewing: Promise<Session> | undefined;
  private ws: Client | undefined;

  constructor(
    session: Session,
    /** Told of every renewed session, to keep it. */
    private readonly onSession: (session: Session) => void,
    /** Told when the session cannot be renewed any more. */
    private readonly onExpired: (errors: ApiErrorInfo[]) => void = () => {},
  ) {
    this.session = session;
  }

  /** A query or mutation over HTTP. GraphQL errors come back in the result, next to any data. */
  async request<TData, TVariables extends Record<string, unknown>>(
    document: TypedDocumentNode<TData, TVariables>,
    ...[variables]: VariablesArg<TVariables>
  ): Promise<Result<TData>> {
    return this.execute(document, variables as TVariables | undefined);
  }

  /** `request` for callers generic in the variables' type. */
  async execute<TData, TVariables extends Record<string, unknown>>(
    document: TypedDocumentNode<TData, TVariables>,
    variables: TVariables | undefined,
  ): Promise<Result<TData>> {
    const body = JSON.stringify(requestFor(document, variables));
    return this.post<TData>(() => ({ headers: { 'content-type': 'application/json' }, body }));
  }

  /**
   * A mutation with files, as a GraphQL multipart request: `operations` (the request with null where each file
   * goes), `map` (`{"0": ["variables.file"]}`) and the files, with `apollo-require-preflight: true`.
   */
  async upload<TData, TVariables extends Record<string, unknown>>(
    document: TypedDocumentNode<TData, TVariables>,
    variables: TVariables,
    files: Record<string, File | Blob>,
  ): Promise<Result<TData>> {
    const withoutFiles: Record<string, unknown> = { ...variables };
    for (const name of Object.keys(files)) withoutFiles[name] = null;
    const operations = JSON.stringify(requestFor(document, withoutFiles));
    const entries = Object.entries(files);
    const map = JSON.stringify(Object.fromEntries(entries.map(([name], i) => [String(i), [`variables.${name}`]])));
    return this.post<TData>(() => {
      const form = new FormData();
      form.append('operations', operations);
      form.append('map', map);
      entries.forEach(([, file], i) => form.append(String(i), file, file instanceof File ? file.name : 'upload'));
      return { headers: { 'apollo-require-preflight': 'true' }, body: form };
    });
  }

  /** A subscription (or any operation) over the WebSocket; returns what stops it. */
  subscribe<TData, TVariables extends Record<string, unknown>>(
    document: TypedDocumentNode<TData, TVariables>,
    variables: TVariables,
    sink: Sink<TData>,
  ): () => void {
    const request = requestFor(document, variables);
    // graphql-ws requires `query` to be a string: with trusted documents it is empty and the gateway reads the hash.
    const payload = { ...request, query: request.query ?? '' };
    return this.socket().subscribe<TData>(payload, {
      next: (result) => sink.next({ data: result.data, errors: result.errors ? toErrorInfos(result.errors) : undefined }),
      error: (error) => sink.error(toErrorInfos(error)),
      complete: () => sink.complete(),
    });
  }

  /** Closes the WebSocket; the client may still be used (it opens a new one). */
  dispose(): void {
    void this.ws?.dispose();
    this.ws = undefined;
  }

  /** The access token, renewed first when it is about to expire. */
  async accessToken(force = false): Promise<string> {
    if (!force && this.session.expiresAt - Date.now() > RENEW_BEFORE_MS) return this.session.accessToken;
    if (!this.session.refreshToken) return this.session.accessToken;
    this.renewing ??= refreshSession(this.session)
      .then((renewed) => {
        this.session = renewed;
        this.onSession(renewed);
        return renewed;
      })
      .catch((error: unknown) => {
        this.onExpired(toErrorInfos(error));
        throw error;
      })
      .finally(() => {
        this.renewing = undefined;
      });
    return (await this.renewing).accessToken;
  }

  private async post<TData>(build: () => { headers: Record<string, string>; body: BodyInit }, retried = false): Promise<Result<TData>> {
    const { headers, body } = build();
    const response = await fetch(GRAPHQL_PATH, {
      method: 'POST',
      headers: { accept: 'application/graphql-response+json, application/json', authorization: `Bearer ${await this.accessToken()}`, ...headers },
      body,
    });
    const result = (await response.json().catch(() => undefined)) as { data?: TData | null; errors?: unknown[] } | undefined;
    if (!result || (result.data === undefined && !result.errors)) {
      throw new ApiError([{ message: `the gateway answered ${response.status} ${response.statusText}`, code: `HTTP_${response.status}` }]);
    }
    const errors = result.errors ? toErrorInfos(result.errors) : undefined;
    if (!retried && response.status === 401 && errors?.some((e) => e.code === 'UNAUTHENTICATED') && this.session.refreshToken) {
      await this.accessToken(true);
      return this.post(build, true);
    }
    return { data: result.data, errors };
  }

  private socket(): Client {
    if (this.ws) return this.ws;
    this.ws = createClient({
      url: graphqlSocketUrl(),
      lazy: true,
      lazyCloseTimeout: 3_000,
      retryAttempts: 5,
      // Read on every (re)connection, so a renewed token is the one sent.
      connectionParams: async () => ({ authorization: `Bearer ${await this.accessToken()}` }),
    });
    return this.ws;
  }
}
