/** React bindings: the signed-in client in context, and a query hook over it. */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { createContext, useCallback, useContext, useEffect, useRef, useState } from 'react';
import type { JarvisClient, Result } from './client';
import { toErrorInfos, type ApiErrorInfo } from './errors';

export const ClientContext = createContext<JarvisClient | null>(null);

export function useClient(): JarvisClient {
  const client = useContext(ClientContext);
  if (!client) throw new Error('useClient outside a signed-in session');
  return client;
}

export interface QueryState<TData> {
  data: TData | null | undefined;
  errors: ApiErrorInfo[];
  refetch: () => Promise<void>;
}

/** Runs `document` over HTTP when mounted and whenever `variables` change (by value). */
export function useQuery<TData, TVariables extends Record<string, unknown>>(
  document: TypedDocumentNode<TData, TVariables>,
  variables: TVariables,
): QueryState<TData> {
  const client = useClient();
  const [state, setState] = useState<Omit<QueryState<TData>, 'refetch'>>({ data: undefined, errors: [] });
  const key = JSON.stringify(variables);
  const latest = useRef(0);

  const run = useCallback(async () => {
    const call = ++latest.current;
    try {
      const result = await client.execute(document, JSON.parse(key) as TVariables);
      if (call === latest.current) setState({ data: result.data, errors: result.errors ?? [] });
    } catch (error) {
      if (call === latest.current) setState((previous) => ({ ...previous, errors: toErrorInfos(error) }));
    }
  }, [client, document, key]);

  useEffect(() => {
    void run();
  }, [run]);

  return { ...state, refetch: run };
}

/** A mutation (or any one-off request) with its errors kept for display. */
export function useErrors() {
  const [errors, setErrors] = useState<ApiErrorInfo[]>([]);
  const report = useCallback((error: unknown) => setErrors(toErrorInfos(error)), []);
  const clear = useCallback(() => setErrors([]), []);
  /**
   * Clears the errors, then awaits `request` and keeps its errors (none when it has none) or what it threw;
   * resolves to its result, or undefined when it threw.
   */
  const run = useCallback(async <TData>(request: () => Promise<Result<TData>>): Promise<Result<TData> | undefined> => {
    setErrors([]);
    try {
      const result = await request();
      setErrors(result.errors ?? []);
      return result;
    } catch (error) {
      setErrors(toErrorInfos(error));
      return undefined;
    }
  }, []);
  return { errors, setErrors, report, clear, run };
}
