import { ANONYMOUS, PRINCIPAL_HEADER, type PrincipalSigner } from '@jarvis/platform/contracts';

const PROBE = JSON.stringify({ query: '{ __typename }' });

/**
 * The gateway is ready once every subgraph answers GraphQL: before that, requests would only fail (a gateway
 * that starts before its subgraphs answers SUBGRAPH_UNAVAILABLE meanwhile). Each subgraph is asked the
 * smallest query, signed as an anonymous caller, so any subgraph of any supergraph can answer it.
 */
export function subgraphsReady(subgraphUrls: ReadonlyMap<string, string>, signer: PrincipalSigner, timeoutMs = 2_000) {
  return async function checkReady(): Promise<void> {
    const token = await signer.sign(ANONYMOUS);
    const answers = await Promise.all(
      [...subgraphUrls].map(async ([name, url]) => {
        const ok = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', [PRINCIPAL_HEADER]: token },
          body: PROBE,
          signal: AbortSignal.timeout(timeoutMs),
        }).then(
          async (response) => (await response.arrayBuffer(), response.ok),
          () => false,
        );
        return { name, ok };
      }),
    );
    const down = answers.filter((answer) => !answer.ok).map((answer) => answer.name);
    if (down.length) throw new Error(`subgraphs not answering: ${down.join(', ')}`);
  };
}
