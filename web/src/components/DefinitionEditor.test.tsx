/**
 * The definition editor: the YAML is checked with validateDefinition once typing pauses (one request for a burst
 * of typing, none for a text already checked), each problem is listed as "line L, column C — message (path)" and
 * its line is marked in the gutter; Save creates the definition and Publish moves production to its version.
 */
import { act, fireEvent, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import type { DefinitionFieldsFragment } from '../gql/graphql';
import { FakeGateway, type SeenRequest } from '../test/fake-gateway';
import { renderSignedIn } from '../test/render';
import { VALIDATE_AFTER_MS } from './definition-problems';
import { DefinitionEditor } from './DefinitionEditor';
import { EXAMPLE_WORKFLOW } from './workflow-examples';

/** The example with the colon after `name` forgotten on line 4: YAML that cannot be read. */
const BROKEN = EXAMPLE_WORKFLOW.replace('  name: expense-approval', '  name expense-approval');
const UNREADABLE = { message: 'Implicit keys need to be on a single line', path: '', line: 4, column: 3 };
const NOT_A_TASK = { message: 'not a task: a task is one of call, do, emit, for, fork, listen, raise, run, set, switch, try, wait', path: '/do/0/prepare', line: 16, column: 5 };

const definitionAt = (version: number, production: number | null): DefinitionFieldsFragment => ({
  id: 'definition-1',
  name: 'expense-approval',
  kind: 'WORKFLOW',
  createdAt: '2026-01-05T09:00:00.000Z',
  latestVersion: { number: version, createdAt: '2026-01-05T09:00:00.000Z', workflow: { inputSchema: '{"type":"object","properties":{"amount":{"type":"number"}}}' } },
  production: production === null ? null : { name: 'production', movedAt: '2026-01-05T09:01:00.000Z', version: { number: production } },
});

function setUp() {
  const gateway = new FakeGateway().install();
  const checked: SeenRequest[] = [];
  gateway.answer('ValidateDefinition', (request) => {
    checked.push(request);
    const source = request.variables.source as string;
    const problems = source.includes('name expense-approval') ? [UNREADABLE] : source.includes('prepare:\n      sett:') ? [NOT_A_TASK] : [];
    return { data: { validateDefinition: { valid: problems.length === 0, problems } } };
  });
  renderSignedIn(<DefinitionEditor definitionId={null} kind="WORKFLOW" onStarted={vi.fn()} />);
  return { gateway, checked, source: screen.getByRole('textbox', { name: "The workflow's YAML" }) as HTMLTextAreaElement };
}

/** Replaces the editor's text in one change, as pasting does. */
const edit = (source: HTMLTextAreaElement, text: string) => act(() => void fireEvent.change(source, { target: { value: text } }));

describe('DefinitionEditor', () => {
  it('starts from a valid example workflow without checking it', async () => {
    const { checked, source } = setUp();
    expect(source.value).toBe(EXAMPLE_WORKFLOW);
    expect(source.value).toMatch(/^document:\n {2}dsl: '1\.0\.0'/);
    expect(source.value).toContain('set:');
    expect(source.value).toContain('type: jarvis.approval');
    expect(screen.getByText('No problems.')).toBeInTheDocument();
    await new Promise((resolve) => setTimeout(resolve, VALIDATE_AFTER_MS + 100));
    expect(checked).toHaveLength(0);
  });

  it('lists each problem with its line and column once typing pauses, and marks its line', async () => {
    const { checked, source } = setUp();

    edit(source, BROKEN);
    expect(checked).toHaveLength(0);
    const problem = await screen.findByTestId('definition-problem');
    expect(problem).toHaveTextContent('line 4, column 3 — Implicit keys need to be on a single line');
    expect(problem).toHaveAttribute('data-line', '4');
    expect(problem).toHaveAttribute('data-column', '3');
    expect(checked).toHaveLength(1);
    expect(checked[0]!.variables).toEqual({ kind: 'WORKFLOW', source: BROKEN });
    expect(document.querySelector('.gutter [data-problem-line="4"]')).toHaveTextContent('●4');
    expect(document.querySelectorAll('.source-marks .mark.problem')).toHaveLength(1);
    expect(source).toHaveAttribute('aria-invalid', 'true');
    expect(screen.getByTestId('definition-save')).toBeDisabled();

    // A problem of the document names its path too.
    edit(source, EXAMPLE_WORKFLOW.replace('prepare:\n      set:', 'prepare:\n      sett:'));
    await waitFor(() =>
      expect(screen.getByTestId('definition-problem')).toHaveTextContent(`line 16, column 5 — ${NOT_A_TASK.message} (/do/0/prepare)`),
    );
    expect(document.querySelector('.gutter [data-problem-line="16"]')).toBeInTheDocument();
    expect(document.querySelector('.gutter [data-problem-line="4"]')).not.toBeInTheDocument();

    // Back to the example: known valid, so no request, and no problem left.
    edit(source, EXAMPLE_WORKFLOW);
    expect(screen.queryByTestId('definition-problem')).not.toBeInTheDocument();
    expect(source).toHaveAttribute('aria-invalid', 'false');
    expect(checked).toHaveLength(2);
  });

  it('checks a burst of typing once, after it pauses', async () => {
    const { checked, source } = setUp();
    const user = userEvent.setup();
    await user.click(source);
    await user.keyboard('{Control>}{End}{/Control}# one more line');
    await waitFor(() => expect(checked).toHaveLength(1));
    expect(checked[0]!.variables.source).toBe(`${EXAMPLE_WORKFLOW}# one more line`);
    await new Promise((resolve) => setTimeout(resolve, VALIDATE_AFTER_MS + 100));
    expect(checked).toHaveLength(1);
  });

  it('saves a new workflow with its name and kind, then publishes its version to production', async () => {
    const { gateway } = setUp();
    const user = userEvent.setup();
    gateway.answer('CreateDefinition', () => ({ data: { createDefinition: definitionAt(1, null) } }));
    gateway.answer('PublishDefinition', ({ variables }) => {
      expect(variables).toEqual({ input: { definitionId: 'definition-1', version: 1, label: 'production' } });
      return { data: { publishDefinition: { name: 'production', version: { number: 1 }, definition: definitionAt(1, 1) } } };
    });

    await user.type(screen.getByRole('textbox', { name: 'Name' }), 'expense-approval');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    await screen.findByText('Saved version 1.');
    const created = gateway.requests.find((request) => request.operationName === 'CreateDefinition')!;
    expect(created.variables).toEqual({ input: { name: 'expense-approval', kind: 'WORKFLOW', source: EXAMPLE_WORKFLOW } });
    expect(screen.getByTestId('definition-versions')).toHaveTextContent('latest v1 · production not published');

    await user.click(screen.getByRole('button', { name: 'Publish version 1 to production' }));
    await screen.findByText('Published version 1 to production.');
    expect(screen.getByTestId('definition-versions')).toHaveTextContent('latest v1 · production v1');
    expect(screen.getByRole('button', { name: 'Publish version 1 to production' })).toBeDisabled();
    // The saved workflow can be run from here, with an input made from its schema.
    const form = screen.getByRole('heading', { name: 'Start a run of expense-approval' }).closest('form')!;
    expect(within(form).getByRole('textbox', { name: 'Input (JSON)' })).toHaveValue('{\n  "amount": 0\n}');
  });

  it('shows the problems a refused save names, on their lines', async () => {
    const { gateway } = setUp();
    const user = userEvent.setup();
    gateway.answer('CreateDefinition', () => ({
      errors: [{ message: 'line 16, column 5: not a task', extensions: { code: 'BAD_USER_INPUT', line: 16, column: 5, path: '/do/0/prepare', problems: [NOT_A_TASK] } }],
    }));
    await user.type(screen.getByRole('textbox', { name: 'Name' }), 'expense-approval');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    expect(await screen.findByTestId('definition-problem')).toHaveTextContent('line 16, column 5');
    expect(screen.getByRole('alert')).toHaveAttribute('data-code', 'BAD_USER_INPUT');
  });
});
