import { useEffect, useState, type FormEvent } from 'react';
import type { ApiErrorInfo } from '../api/errors';
import { useClient, useErrors } from '../api/hooks';
import {
  AddDefinitionVersionDocument,
  CreateDefinitionDocument,
  DefinitionSourceDocument,
  PublishDefinitionDocument,
  type DefinitionFieldsFragment,
  type DefinitionKind,
} from '../gql/graphql';
import { problemsFromErrors, useValidation, type DefinitionProblem } from './definition-problems';
import { ErrorList } from './ErrorList';
import { SourceEditor } from './SourceEditor';
import { StartRun } from './StartRun';
import { exampleFor } from './workflow-examples';

interface Props {
  /** The definition to edit; null for a new one of `kind`. */
  definitionId: string | null;
  kind: DefinitionKind;
  /** A run was started: its id. */
  onStarted: (runId: string) => void;
}

const KIND_NAMES: Record<DefinitionKind, string> = { WORKFLOW: 'workflow', AGENT: 'agent' };

/**
 * A definition's YAML, checked as it is typed; Save creates the definition (its name and kind) or adds a version,
 * Publish points `production` at the latest version, and a saved definition can be run from here.
 */
export function DefinitionEditor({ definitionId, kind: newKind, onStarted }: Props) {
  const client = useClient();
  const [definition, setDefinition] = useState<DefinitionFieldsFragment | null>(null);
  const [name, setName] = useState('');
  const [source, setSource] = useState(() => (definitionId ? '' : exampleFor(newKind)));
  const [saved, setSaved] = useState<string[]>(() => (definitionId ? [] : [exampleFor(newKind)]));
  const [refused, setRefused] = useState<{ source: string; problems: DefinitionProblem[] } | null>(null);
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState('');
  const failures = useErrors();
  const kind = definition?.kind ?? newKind;
  const validation = useValidation(kind, source, saved);

  useEffect(() => {
    if (!definitionId) return;
    void failures.run(() => client.request(DefinitionSourceDocument, { id: definitionId })).then((result) => {
      const found = result?.data?.definition;
      if (!found) return;
      setDefinition(found);
      setName(found.name);
      setSource(found.source.source);
      setSaved([found.source.source]);
    });
  }, [client, definitionId]); // eslint-disable-line react-hooks/exhaustive-deps

  const savedSource = saved.at(-1);
  const dirty = !definition || source !== savedSource;
  const problems = refused?.source === source ? refused.problems : validation.problems;
  const latest = definition?.latestVersion.number;
  const published = definition?.production?.version.number;

  async function save(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setNotice('');
    const text = source;
    let stored: DefinitionFieldsFragment | null | undefined;
    let errors: ApiErrorInfo[] | undefined;
    if (definition) {
      const result = await failures.run(() => client.request(AddDefinitionVersionDocument, { input: { definitionId: definition.id, source: text } }));
      stored = result?.data?.addDefinitionVersion?.definition;
      errors = result?.errors;
    } else {
      const result = await failures.run(() => client.request(CreateDefinitionDocument, { input: { name: name.trim(), kind, source: text } }));
      stored = result?.data?.createDefinition;
      errors = result?.errors;
    }
    if (stored) {
      setDefinition(stored);
      setSaved((texts) => [...texts, text]);
      setRefused(null);
      setNotice(`Saved version ${stored.latestVersion.number}.`);
    } else if (errors) {
      setRefused({ source: text, problems: problemsFromErrors(errors) });
    }
    setBusy(false);
  }

  async function publish() {
    if (!definition || latest === undefined) return;
    setBusy(true);
    setNotice('');
    const label = (await failures.run(() => client.request(PublishDefinitionDocument, { input: { definitionId: definition.id, version: latest, label: 'production' } })))
      ?.data?.publishDefinition;
    if (label) {
      setDefinition(label.definition);
      setNotice(`Published version ${label.version.number} to ${label.name}.`);
    }
    setBusy(false);
  }

  return (
    <div className="definition-editor">
      <form onSubmit={(e) => void save(e)}>
        <div className="row">
          <label>
            Name{' '}
            <input
              data-testid="definition-name"
              value={name}
              onChange={(e) => setName(e.target.value)}
              readOnly={!!definition}
              required
              pattern="[a-z0-9][a-z0-9._\-]{0,63}"
              title="lower-case letters, digits and ._- (at most 64), starting with a letter or digit"
            />
          </label>
          <span className="badge">{KIND_NAMES[kind]}</span>
          {definition && (
            <span className="muted" data-testid="definition-versions">
              latest v{latest} · production {published ? `v${published}` : 'not published'}
            </span>
          )}
        </div>
        <SourceEditor
          label={`The ${KIND_NAMES[kind]}'s YAML`}
          value={source}
          onChange={setSource}
          problems={problems}
          checking={validation.checking}
          checked={validation.checked || refused?.source === source}
        />
        <ErrorList errors={validation.errors} />
        <div className="row">
          <button data-testid="definition-save" type="submit" disabled={busy || !dirty || !name.trim() || (validation.checked && problems.length > 0)}>
            {definition ? 'Save a new version' : 'Save'}
          </button>
          <button
            data-testid="definition-publish"
            type="button"
            className="secondary"
            disabled={busy || !definition || published === latest}
            onClick={() => void publish()}
          >
            Publish {latest ? `version ${latest} ` : ''}to production
          </button>
          {dirty && definition && <span className="muted">unsaved changes</span>}
          <span className="muted" role="status">
            {notice}
          </span>
        </div>
      </form>
      <ErrorList errors={failures.errors} onDismiss={failures.clear} />
      {definition && <StartRun key={definition.id} definition={definition} onStarted={onStarted} />}
    </div>
  );
}
