import { useState } from 'react';
import type { DefinitionFieldsFragment, DefinitionKind } from '../gql/graphql';
import { DefinitionEditor } from './DefinitionEditor';
import { DefinitionList } from './DefinitionList';
import { RunView } from './RunView';
import { StartRun } from './StartRun';

type View =
  | { page: 'list' }
  | { page: 'edit'; definitionId: string | null; kind: DefinitionKind }
  | { page: 'start'; definition: DefinitionFieldsFragment }
  | { page: 'run'; runId: string };

const TITLES: Record<View['page'], string> = { list: 'Workflows', edit: 'Workflows: editor', start: 'Workflows: start a run', run: 'Workflows: run' };

/** Workflows and agents: the list, the editor (check, save, publish), starting a run, and a run followed live. */
export function Workflows() {
  const [view, setView] = useState<View>({ page: 'list' });
  const openRun = (runId: string) => setView({ page: 'run', runId });

  return (
    <section className="panel workflows" data-testid="workflows-panel" aria-labelledby="workflows-title">
      <h2 id="workflows-title">
        {TITLES[view.page]}{' '}
        {view.page !== 'list' && (
          <button type="button" className="link" data-testid="workflows-back" onClick={() => setView({ page: 'list' })}>
            ← all workflows and runs
          </button>
        )}
      </h2>
      {view.page === 'list' && (
        <DefinitionList
          onNew={(kind) => setView({ page: 'edit', definitionId: null, kind })}
          onEdit={(definition) => setView({ page: 'edit', definitionId: definition.id, kind: definition.kind })}
          onRun={(definition) => setView({ page: 'start', definition })}
          onOpenRun={openRun}
        />
      )}
      {view.page === 'edit' && <DefinitionEditor key={view.definitionId ?? `new-${view.kind}`} definitionId={view.definitionId} kind={view.kind} onStarted={openRun} />}
      {view.page === 'start' && <StartRun definition={view.definition} onStarted={openRun} />}
      {view.page === 'run' && <RunView key={view.runId} runId={view.runId} />}
    </section>
  );
}
