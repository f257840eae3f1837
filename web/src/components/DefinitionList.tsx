import { useQuery } from '../api/hooks';
import { DefinitionsDocument, RunsDocument, type DefinitionFieldsFragment, type DefinitionKind } from '../gql/graphql';
import { LoadErrors } from './ErrorList';
import { time } from './format';

interface Props {
  onNew: (kind: DefinitionKind) => void;
  onEdit: (definition: DefinitionFieldsFragment) => void;
  onRun: (definition: DefinitionFieldsFragment) => void;
  onOpenRun: (runId: string) => void;
}

/** The tenant's workflows and agents, each with its latest version and the version production points at; recent runs. */
export function DefinitionList({ onNew, onEdit, onRun, onOpenRun }: Props) {
  const definitions = useQuery(DefinitionsDocument, { first: 50 });
  const runs = useQuery(RunsDocument, { first: 10 });
  const listed = definitions.data?.tenant?.definitions ?? [];
  const recent = runs.data?.tenant?.runs ?? [];

  return (
    <>
      <div className="row">
        <button data-testid="definition-new-workflow" type="button" onClick={() => onNew('WORKFLOW')}>
          New workflow
        </button>
        <button data-testid="definition-new-agent" type="button" className="secondary" onClick={() => onNew('AGENT')}>
          New agent
        </button>
        <button type="button" className="link" onClick={() => void Promise.all([definitions.refetch(), runs.refetch()])}>
          refresh
        </button>
      </div>
      <LoadErrors errors={definitions.errors} />
      <table>
        <caption className="visually-hidden">Workflows and agents</caption>
        <thead>
          <tr>
            <th>Name</th>
            <th>Kind</th>
            <th>Latest version</th>
            <th>Production</th>
            <th>Created</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {listed.map((definition) => (
            <tr key={definition.id} data-testid="definition-row" data-name={definition.name} data-kind={definition.kind}>
              <td>
                <strong>{definition.name}</strong>
              </td>
              <td className="muted">{definition.kind.toLowerCase()}</td>
              <td>v{definition.latestVersion.number}</td>
              <td>{definition.production ? `v${definition.production.version.number}` : <span className="muted">not published</span>}</td>
              <td className="muted">{time(definition.createdAt)}</td>
              <td>
                <button type="button" className="link" aria-label={`Edit ${definition.name}`} onClick={() => onEdit(definition)}>
                  edit
                </button>
                <button type="button" className="link" aria-label={`Run ${definition.name}`} onClick={() => onRun(definition)}>
                  run
                </button>
              </td>
            </tr>
          ))}
          {definitions.data && listed.length === 0 && (
            <tr>
              <td colSpan={6} className="muted">
                No workflow or agent yet.
              </td>
            </tr>
          )}
        </tbody>
      </table>
      <h3>Recent runs</h3>
      <LoadErrors errors={runs.errors} />
      <ul className="list">
        {recent.map((run) => (
          <li key={run.id}>
            <button type="button" className="item run-item" data-testid="run-item" data-status={run.status} onClick={() => onOpenRun(run.id)}>
              <span className={`status status-${run.status.toLowerCase()}`}>{run.status}</span> {run.definition.name} v{run.version.number}
              <span className="muted"> · {time(run.startedAt)}</span>
            </button>
          </li>
        ))}
        {runs.data && recent.length === 0 && <li className="muted">No run yet.</li>}
      </ul>
    </>
  );
}
