/**
 * The console's transport edge, faked for component tests: a `fetch` that answers `POST /oauth/token` and
 * `POST /graphql` as the gateway does, and a `WebSocket` whose other end speaks graphql-transport-ws as the
 * gateway does (connection_init → connection_ack; subscribe → next… then complete or error). Components run
 * unchanged, through their real JarvisClient, session functions and graphql-ws client.
 *
 * The test plays the server: it answers operations by name (`answer`), the token endpoint (`tokenEndpoint`),
 * and pushes subscription events with `subscription.next(data)`. State updates that a push causes happen
 * synchronously, so wrap pushes in Testing Library's `act`.
 */
import { vi } from 'vitest';

/** A GraphQL request as the gateway received it. */
export interface SeenRequest {
  operationName: string;
  variables: Record<string, unknown>;
  /** The `authorization` header (HTTP) or `connection_init` payload's `authorization` (WebSocket). */
  authorization: string | undefined;
}

/** A GraphQL response body: `{ data }`, `{ errors }` or both. */
export interface GraphQLBody {
  data?: unknown;
  errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[];
}

export type OperationHandler = (request: SeenRequest) => GraphQLBody | Promise<GraphQLBody>;

/** What the token endpoint answers: a status and an RFC 6749 JSON body. */
export interface TokenAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** One subscription as the server sees it: what was asked, and the means to answer it. */
export class FakeSubscription {
  /** The client sent `complete` (it stopped listening), or the socket closed. */
  stopped = false;

  constructor(
    private readonly socket: FakeSocketServerSide,
    readonly id: string,
    readonly request: SeenRequest,
  ) {}

  get operationName(): string {
    return this.request.operationName;
  }

  get variables(): Record<string, unknown> {
    return this.request.variables;
  }

  /** Sends one result (`next`). */
  next(data: unknown): void {
    this.socket.deliver({ id: this.id, type: 'next', payload: { data } });
  }

  /** Ends the subscription normally (`complete`), as the server does when its source ends. */
  complete(): void {
    this.socket.deliver({ id: this.id, type: 'complete' });
    this.stopped = true;
  }

  /** Ends the subscription with GraphQL errors (`error`). */
  error(errors: NonNullable<GraphQLBody['errors']>): void {
    this.socket.deliver({ id: this.id, type: 'error', payload: errors });
    this.stopped = true;
  }
}

/** What the fake server can do with a socket. */
export interface FakeSocketServerSide {
  readonly url: string;
  /** Sends a graphql-transport-ws message to the client, if the socket is open. */
  deliver(message: Record<string, unknown>): void;
  /** Closes the socket from the server's side (1006: the connection dropped without a close frame). */
  drop(code?: number, reason?: string): void;
}

export class FakeGateway {
  /** Every GraphQL request over HTTP, in order. */
  readonly requests: SeenRequest[] = [];
  /** Every form posted to /oauth/token, in order. */
  readonly tokenRequests: URLSearchParams[] = [];
  /** Every WebSocket the client opened, in order. */
  readonly sockets: FakeSocketServerSide[] = [];
  /** Every subscription the client started, in order (across sockets). */
  readonly subscriptions: FakeSubscription[] = [];

  /** The token endpoint; refuses everything until a test sets it. */
  tokenEndpoint: (form: URLSearchParams) => TokenAnswer = () => ({
    status: 400,
    body: { error: 'invalid_request', error_description: 'no token endpoint in this test' },
  });

  /** Called with each new subscription, just after the client has sent `subscribe`. */
  onSubscribe: (subscription: FakeSubscription) => void = () => {};

  private readonly operations = new Map<string, OperationHandler>();

  /** Answers HTTP requests for `operationName` with `handler` (the last one set wins). */
  answer(operationName: string, handler: OperationHandler): this {
    this.operations.set(operationName, handler);
    return this;
  }

  /** Puts this gateway's fetch and WebSocket in place of the globals for the current test. */
  install(): this {
    vi.stubGlobal('fetch', this.fetch);
    vi.stubGlobal('WebSocket', this.webSocketClass());
    return this;
  }

  /** The subscriptions of one operation, in order. */
  subscriptionsTo(operationName: string): FakeSubscription[] {
    return this.subscriptions.filter((subscription) => subscription.operationName === operationName);
  }

  readonly fetch = async (input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : String(input), location.href);
    const headers = new Headers(init.headers);
    if (init.method !== 'POST') return json(405, { errors: [{ message: `${init.method ?? 'GET'} is not served here` }] });
    if (url.pathname === '/oauth/token') {
      const form = new URLSearchParams(String(init.body));
      this.tokenRequests.push(form);
      const { status, body } = this.tokenEndpoint(form);
      return json(status, body, { 'cache-control': 'no-store' });
    }
    if (url.pathname === '/graphql') {
      if (typeof init.body !== 'string') return json(400, { errors: [{ message: 'this fake takes JSON requests only' }] });
      const body = JSON.parse(init.body) as { operationName: string; variables?: Record<string, unknown> };
      const request = { operationName: body.operationName, variables: body.variables ?? {}, authorization: headers.get('authorization') ?? undefined };
      this.requests.push(request);
      const handler = this.operations.get(request.operationName);
      if (!handler) {
        return json(200, { errors: [{ message: `no answer for ${request.operationName} in this test`, extensions: { code: 'NOT_IN_TEST' } }] });
      }
      return json(200, await handler(request), { 'content-type': 'application/graphql-response+json' });
    }
    return json(404, { errors: [{ message: `${url.pathname} is not served here` }] });
  };

  /** A WebSocket class (the browser's API, as much of it as graphql-ws uses) whose server is this gateway. */
  private webSocketClass() {
    const gateway = this;

    class FakeWebSocket implements FakeSocketServerSide {
      static readonly CONNECTING = 0;
      static readonly OPEN = 1;
      static readonly CLOSING = 2;
      static readonly CLOSED = 3;

      readyState = FakeWebSocket.CONNECTING;
      readonly protocol: string;
      onopen: ((event: unknown) => void) | null = null;
      onmessage: ((event: { data: string }) => void) | null = null;
      onclose: ((event: { code: number; reason: string; wasClean: boolean }) => void) | null = null;
      onerror: ((event: unknown) => void) | null = null;
      private authorization: string | undefined;
      private readonly mine = new Map<string, FakeSubscription>();

      constructor(
        readonly url: string,
        protocols?: string | string[],
      ) {
        this.protocol = [protocols ?? []].flat()[0] ?? '';
        gateway.sockets.push(this);
        queueMicrotask(() => {
          if (this.readyState !== FakeWebSocket.CONNECTING) return;
          if (this.protocol !== 'graphql-transport-ws') return this.drop(1002, 'graphql-transport-ws only');
          this.readyState = FakeWebSocket.OPEN;
          this.onopen?.({ type: 'open' });
        });
      }

      send(data: string): void {
        if (this.readyState !== FakeWebSocket.OPEN) throw new Error('send on a socket that is not open');
        const message = JSON.parse(data) as { type: string; id?: string; payload?: Record<string, unknown> };
        switch (message.type) {
          case 'connection_init':
            this.authorization = typeof message.payload?.authorization === 'string' ? message.payload.authorization : undefined;
            queueMicrotask(() => this.deliver({ type: 'connection_ack' }));
            return;
          case 'ping':
            queueMicrotask(() => this.deliver({ type: 'pong' }));
            return;
          case 'subscribe': {
            const payload = message.payload as { operationName: string; variables?: Record<string, unknown> };
            const subscription = new FakeSubscription(this, message.id!, {
              operationName: payload.operationName,
              variables: payload.variables ?? {},
              authorization: this.authorization,
            });
            this.mine.set(subscription.id, subscription);
            gateway.subscriptions.push(subscription);
            // As over a network: the server's first answer comes after the client's send has returned.
            queueMicrotask(() => gateway.onSubscribe(subscription));
            return;
          }
          case 'complete': {
            const subscription = this.mine.get(message.id!);
            if (subscription) subscription.stopped = true;
            return;
          }
        }
      }

      close(code = 1000, reason = ''): void {
        if (this.readyState === FakeWebSocket.CLOSED || this.readyState === FakeWebSocket.CLOSING) return;
        this.readyState = FakeWebSocket.CLOSING;
        queueMicrotask(() => this.closed(code, reason, true));
      }

      deliver(message: Record<string, unknown>): void {
        if (this.readyState !== FakeWebSocket.OPEN) return;
        this.onmessage?.({ data: JSON.stringify(message) });
      }

      drop(code = 1006, reason = ''): void {
        if (this.readyState === FakeWebSocket.CLOSED) return;
        this.closed(code, reason, false);
      }

      private closed(code: number, reason: string, wasClean: boolean) {
        this.readyState = FakeWebSocket.CLOSED;
        for (const subscription of this.mine.values()) subscription.stopped = true;
        this.onclose?.({ code, reason, wasClean });
      }
    }

    return FakeWebSocket;
  }
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
}
