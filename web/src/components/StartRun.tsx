import { useId, useState, type FormEvent } from 'react';
import { useClient, useErrors } from '../api/hooks';
import { StartRunDocument, type DefinitionFieldsFragment } from '../gql/graphql';
import { ErrorList } from './ErrorList';
import { sampleInput } from './workflow-examples';

/** The JSON text's value, or why it is not JSON. */
function parseJson(text: string): { value: unknown } | { error: string } {
  try {
    return { value: JSON.parse(text) as unknown };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

/**
 * Starts a run of the definition at its production version (or, before it is published, its latest version),
 * with an input typed as JSON and checked as it is typed.
 */
export function StartRun({ definition, onStarted }: { definition: DefinitionFieldsFragment; onStarted: (runId: string) => void }) {
  const client = useClient();
  const id = useId();
  const [input, setInput] = useState(() => sampleInput(definition.kind, definition.latestVersion.workflow?.inputSchema));
  const [busy, setBusy] = useState(false);
  const failures = useErrors();
  const parsed = parseJson(input);
  const production = definition.production?.version.number;

  async function start(event: FormEvent) {
    event.preventDefault();
    if (!('value' in parsed)) return;
    setBusy(true);
    const run = (
      await failures.run(() =>
        client.request(StartRunDocument, {
          input:
            production !== undefined
              ? { definitionId: definition.id, label: 'production', input: parsed.value }
              : { definitionId: definition.id, label: 'production', version: definition.latestVersion.number, input: parsed.value },
        }),
      )
    )?.data?.startRun;
    setBusy(false);
    if (run) onStarted(run.id);
  }

  return (
    <form className="start-run" onSubmit={(e) => void start(e)}>
      <h3>Start a run of {definition.name}</h3>
      <p className="muted">
        {production !== undefined
          ? `Runs version ${production}, the one production points at.`
          : `Not published yet: runs version ${definition.latestVersion.number}, the latest.`}
      </p>
      <label htmlFor={id}>Input (JSON)</label>
      <textarea
        id={id}
        data-testid="run-input"
        className="mono"
        rows={Math.min(12, Math.max(3, input.split('\n').length))}
        value={input}
        onChange={(e) => setInput(e.target.value)}
        spellCheck={false}
        aria-invalid={'error' in parsed}
        aria-describedby={`${id}-json`}
      />
      <p id={`${id}-json`} className={'error' in parsed ? 'error' : 'muted'} data-testid="run-input-check">
        {'error' in parsed ? `Not JSON: ${parsed.error}` : 'Valid JSON.'}
      </p>
      <button data-testid="run-start" type="submit" disabled={busy || 'error' in parsed}>
        Start
      </button>
      <ErrorList errors={failures.errors} onDismiss={failures.clear} />
    </form>
  );
}
