import { useId, useRef, type UIEvent } from 'react';
import { describeProblem, type DefinitionProblem } from './definition-problems';

interface Props {
  label: string;
  value: string;
  onChange: (value: string) => void;
  problems: readonly DefinitionProblem[];
  /** A check of the text as it is now is under way. */
  checking: boolean;
  /** The text as it is now has been checked. */
  checked: boolean;
}

/**
 * A monospace textarea with line numbers: each line with a problem is marked in the gutter and highlighted behind
 * the text, and the problems are listed below ("line L, column C — message (path)"); choosing one puts the cursor
 * there.
 */
export function SourceEditor({ label, value, onChange, problems, checking, checked }: Props) {
  const id = useId();
  const textarea = useRef<HTMLTextAreaElement>(null);
  const gutter = useRef<HTMLOListElement>(null);
  const marks = useRef<HTMLDivElement>(null);
  const lines = value.split('\n');
  const byLine = new Map<number, DefinitionProblem[]>();
  for (const problem of problems) byLine.set(problem.line, [...(byLine.get(problem.line) ?? []), problem]);

  function onScroll(event: UIEvent<HTMLTextAreaElement>) {
    const { scrollTop } = event.currentTarget;
    if (gutter.current) gutter.current.scrollTop = scrollTop;
    if (marks.current) marks.current.style.transform = `translateY(${-scrollTop}px)`;
  }

  /** Puts the cursor at the problem's line and column. */
  function goTo(problem: DefinitionProblem) {
    const area = textarea.current;
    if (!area) return;
    const before = lines.slice(0, problem.line - 1).reduce((offset, line) => offset + line.length + 1, 0);
    const offset = Math.min(value.length, before + problem.column - 1);
    area.focus();
    area.setSelectionRange(offset, offset);
  }

  return (
    <div className="source">
      <label htmlFor={id}>{label}</label>
      <div className="source-editor">
        <ol className="gutter" ref={gutter} aria-hidden="true">
          {lines.map((_, i) => {
            const here = byLine.get(i + 1);
            return (
              <li key={i} className={here ? 'problem' : undefined} data-problem-line={here ? i + 1 : undefined} title={here?.map((p) => p.message).join('\n')}>
                {here ? '●' : ''}
                {i + 1}
              </li>
            );
          })}
        </ol>
        <div className="source-area">
          <div className="source-marks" ref={marks} aria-hidden="true">
            {lines.map((_, i) => (
              <div key={i} className={byLine.has(i + 1) ? 'mark problem' : 'mark'} />
            ))}
          </div>
          <textarea
            id={id}
            ref={textarea}
            data-testid="definition-source"
            className="source-text"
            value={value}
            onChange={(e) => onChange(e.target.value)}
            onScroll={onScroll}
            wrap="off"
            spellCheck={false}
            autoCapitalize="off"
            autoComplete="off"
            rows={Math.min(30, Math.max(12, lines.length + 1))}
            aria-invalid={problems.length > 0}
            aria-describedby={`${id}-problems`}
          />
        </div>
      </div>
      <div id={`${id}-problems`} className="problems" aria-live="polite">
        {problems.length > 0 ? (
          <ul>
            {problems.map((problem, i) => (
              <li key={i} data-testid="definition-problem" data-line={problem.line} data-column={problem.column}>
                <button type="button" className="link danger" onClick={() => goTo(problem)}>
                  {describeProblem(problem)}
                </button>
              </li>
            ))}
          </ul>
        ) : (
          <p className="muted" data-testid="definition-check" data-state={checking ? 'checking' : checked ? 'valid' : 'unchecked'}>
            {checking ? 'Checking…' : checked ? 'No problems.' : ''}
          </p>
        )}
      </div>
    </div>
  );
}
