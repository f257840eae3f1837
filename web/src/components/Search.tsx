import { useState, type FormEvent } from 'react';
import { useClient, useErrors } from '../api/hooks';
import { SearchDocument, type KnowledgeBaseFieldsFragment, type PassageFieldsFragment, type SearchMode } from '../gql/graphql';
import { ErrorList } from './ErrorList';
import { OnlySelected, onlyIds } from './OnlySelected';

const MODES: { value: SearchMode; label: string }[] = [
  { value: 'HYBRID', label: 'Hybrid (words and meaning)' },
  { value: 'LEXICAL', label: 'Lexical (BM25)' },
  { value: 'VECTOR', label: 'Vector (embeddings)' },
];

/** Passages matching a query, in any mode, optionally reranked; across all knowledge bases or the selected one. */
export function Search({ knowledgeBase }: { knowledgeBase: KnowledgeBaseFieldsFragment | null }) {
  const client = useClient();
  const [query, setQuery] = useState('');
  const [mode, setMode] = useState<SearchMode>('HYBRID');
  const [rerank, setRerank] = useState(false);
  const [topK, setTopK] = useState(10);
  const [onlySelected, setOnlySelected] = useState(false);
  const [results, setResults] = useState<PassageFieldsFragment[] | null>(null);
  const [busy, setBusy] = useState(false);
  const failures = useErrors();

  async function search(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    const result = await failures.run(() =>
      client.request(SearchDocument, {
        text: query.trim(),
        mode,
        rerank,
        topK,
        knowledgeBaseIds: onlyIds(onlySelected, knowledgeBase),
      }),
    );
    if (result) setResults(result.data?.search ?? []);
    setBusy(false);
  }

  return (
    <section className="panel search">
      <h2>Search</h2>
      <form onSubmit={search}>
        <div className="row">
          <input data-testid="search-input" placeholder="Search the knowledge bases" value={query} onChange={(e) => setQuery(e.target.value)} required />
          <button data-testid="search-submit" type="submit" disabled={busy || !query.trim()}>
            {busy ? 'Searching…' : 'Search'}
          </button>
        </div>
        <div className="row options">
          <select value={mode} onChange={(e) => setMode(e.target.value as SearchMode)} aria-label="mode">
            {MODES.map((m) => (
              <option key={m.value} value={m.value}>
                {m.label}
              </option>
            ))}
          </select>
          <label>
            <input type="checkbox" checked={rerank} onChange={(e) => setRerank(e.target.checked)} /> rerank
          </label>
          <label>
            top <input type="number" min={1} max={50} value={topK} onChange={(e) => setTopK(Math.max(1, Number(e.target.value) || 10))} className="narrow" />
          </label>
          <OnlySelected knowledgeBase={knowledgeBase} checked={onlySelected} onChange={setOnlySelected} />
        </div>
      </form>
      <ErrorList errors={failures.errors} onDismiss={failures.clear} />
      {results && results.length === 0 && <p className="muted">Nothing found.</p>}
      <ol className="results">
        {results?.map((passage) => (
          <li key={passage.id} data-testid="search-result">
            <div>
              <strong>{passage.document.title}</strong> <span className="muted">in {passage.knowledgeBase.name}</span>{' '}
              <span className="score" title="score">
                {passage.score.toFixed(3)}
              </span>
            </div>
            {passage.sectionPath.length > 0 && <div className="section-path">{passage.sectionPath.join(' › ')}</div>}
            <blockquote>{passage.text}</blockquote>
          </li>
        ))}
      </ol>
    </section>
  );
}
