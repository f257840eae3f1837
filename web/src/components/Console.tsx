import { useCallback, useState } from 'react';
import { useQuery } from '../api/hooks';
import type { Session } from '../api/session';
import { SessionDocument, type KnowledgeBaseFieldsFragment } from '../gql/graphql';
import { Chat } from './Chat';
import { ErrorList } from './ErrorList';
import { KnowledgeBases } from './KnowledgeBases';
import { Members } from './Members';
import { Search } from './Search';
import { Usage } from './Usage';
import { Workflows } from './Workflows';

interface Props {
  session: Session;
  sessions: Session[];
  onSwitch: (tenant: string) => void;
  onAddTenant: () => void;
  onSignOut: () => void;
}

/** One signed-in tenant: who and where, then members, knowledge, search, chat, usage and workflows on one page. */
export function Console({ session, sessions, onSwitch, onAddTenant, onSignOut }: Props) {
  const { data, errors } = useQuery(SessionDocument, {});
  const [knowledgeBase, setKnowledgeBase] = useState<KnowledgeBaseFieldsFragment | null>(null);
  // Bumped when something the usage panel counts has changed (an answer ended, a document was stored).
  const [usageVersion, setUsageVersion] = useState(0);
  const usageChanged = useCallback(() => setUsageVersion((v) => v + 1), []);

  return (
    <>
      <header className="top">
        <h1>Jarvis</h1>
        <div className="who">
          <strong data-testid="tenant-name">{data?.tenant?.name ?? ''}</strong>
          {data?.tenant && (
            <span className="muted">
              {' '}
              {data.tenant.slug} · {data.tenant.plan}
            </span>
          )}
          {data?.me && (
            <span className="muted">
              {' '}
              — {data.me.name} &lt;{data.me.email}&gt; ({data.me.roles.join(', ') || 'no role'})
            </span>
          )}
        </div>
        <label className="switch">
          Tenant{' '}
          <select data-testid="tenant-switch" value={session.tenant} onChange={(e) => onSwitch(e.target.value)}>
            {sessions.map((s) => (
              <option key={s.tenant} value={s.tenant}>
                {s.tenant} ({s.email})
              </option>
            ))}
          </select>
        </label>
        <button type="button" className="secondary" onClick={onAddTenant}>
          Sign in to another tenant
        </button>
        <button type="button" className="secondary" onClick={onSignOut}>
          Sign out
        </button>
        <a href="/graphiql" target="_blank" rel="noreferrer">
          GraphiQL
        </a>
      </header>
      <ErrorList errors={errors} />
      <div className="grid">
        <KnowledgeBases selected={knowledgeBase} onSelect={setKnowledgeBase} onStored={usageChanged} />
        <Search knowledgeBase={knowledgeBase} />
        <Chat knowledgeBase={knowledgeBase} onAnswered={usageChanged} />
        <Usage version={usageVersion} />
        <Members />
        <Workflows />
      </div>
    </>
  );
}
