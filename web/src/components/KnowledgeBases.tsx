import { useEffect, useState, type FormEvent } from 'react';
import { useClient, useErrors, useQuery } from '../api/hooks';
import { CreateKnowledgeBaseDocument, KnowledgeBasesDocument, type KnowledgeBaseFieldsFragment, type MemberAccess } from '../gql/graphql';
import { Documents } from './Documents';
import { ErrorList } from './ErrorList';

interface Props {
  selected: KnowledgeBaseFieldsFragment | null;
  onSelect: (knowledgeBase: KnowledgeBaseFieldsFragment | null) => void;
  /** A document was stored or deleted: storage usage changed. */
  onStored: () => void;
}

/** The knowledge bases the caller may read; creating one; the selected one's documents. */
export function KnowledgeBases({ selected, onSelect, onStored }: Props) {
  const client = useClient();
  const { data, errors, refetch } = useQuery(KnowledgeBasesDocument, {});
  const knowledgeBases = data?.tenant?.knowledgeBases ?? [];
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [memberAccess, setMemberAccess] = useState<MemberAccess>('READ');
  const [busy, setBusy] = useState(false);
  const failures = useErrors();

  // Keep the selection on a knowledge base that still exists; pick the first one when none is selected.
  useEffect(() => {
    if (!data) return;
    const current = selected && knowledgeBases.find((kb) => kb.id === selected.id);
    if (current !== selected) onSelect(current ?? knowledgeBases[0] ?? null);
  }, [data]); // eslint-disable-line react-hooks/exhaustive-deps

  async function create(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    const result = await failures.run(() =>
      client.request(CreateKnowledgeBaseDocument, {
        input: { name: name.trim(), description: description.trim() || null, memberAccess },
      }),
    );
    const created = result?.data?.createKnowledgeBase;
    if (created) {
      setName('');
      setDescription('');
      onSelect(created);
      await refetch();
    }
    setBusy(false);
  }

  return (
    <section className="panel knowledge">
      <h2>Knowledge bases</h2>
      <ErrorList errors={errors} />
      <ul className="list">
        {knowledgeBases.map((kb) => (
          <li
            key={kb.id}
            data-testid="kb-item"
            data-id={kb.id}
            className={kb.id === selected?.id ? 'item selected' : 'item'}
            role="button"
            tabIndex={0}
            aria-pressed={kb.id === selected?.id}
            onClick={() => onSelect(kb)}
            onKeyDown={(e) => (e.key === 'Enter' || e.key === ' ') && onSelect(kb)}
          >
            <strong>{kb.name}</strong> <span className="muted">{kb.access.toLowerCase()}</span>
            {kb.description && <div className="muted">{kb.description}</div>}
          </li>
        ))}
        {data && knowledgeBases.length === 0 && <li className="muted">No knowledge base yet.</li>}
      </ul>
      <form className="row" onSubmit={create}>
        <input data-testid="kb-name" placeholder="New knowledge base" value={name} onChange={(e) => setName(e.target.value)} required />
        <input placeholder="Description (optional)" value={description} onChange={(e) => setDescription(e.target.value)} />
        <select value={memberAccess} onChange={(e) => setMemberAccess(e.target.value as MemberAccess)} title="What every member may do with it">
          <option value="NONE">members: none</option>
          <option value="READ">members: read</option>
          <option value="WRITE">members: write</option>
        </select>
        <button data-testid="kb-create" type="submit" disabled={busy || !name.trim()}>
          Create
        </button>
      </form>
      <ErrorList errors={failures.errors} onDismiss={failures.clear} />
      {selected && <Documents key={selected.id} knowledgeBase={selected} onStored={onStored} />}
    </section>
  );
}
