import type { ApiErrorInfo } from '../api/errors';

/** Errors as they came: each with its `extensions.code` (and path, when a field failed). */
export function ErrorList({ errors, onDismiss }: { errors: readonly ApiErrorInfo[]; onDismiss?: () => void }) {
  if (errors.length === 0) return null;
  return (
    <div className="errors">
      {errors.map((error, i) => (
        <div key={i} className="error" role="alert" data-testid="error" data-code={error.code ?? ''}>
          {error.code && <code className="error-code">{error.code}</code>} {error.message}
          {error.path && error.path.length > 0 && <span className="error-path"> at {error.path.join('.')}</span>}
          {typeof error.extensions?.retryAfter === 'number' && <span> (retry after {error.extensions.retryAfter} s)</span>}
        </div>
      ))}
      {onDismiss && (
        <button type="button" className="link" onClick={onDismiss}>
          dismiss
        </button>
      )}
    </div>
  );
}

const DENIED = 'UNAUTHORIZED_FIELD_OR_TYPE';

/**
 * A panel's load errors: fields the caller's role may not read (UNAUTHORIZED_FIELD_OR_TYPE) are a note, not an
 * error — the rest of the answer is shown; anything else is an error.
 */
export function LoadErrors({ errors }: { errors: readonly ApiErrorInfo[] }) {
  const denied = errors.filter((error) => error.code === DENIED);
  const others = errors.filter((error) => error.code !== DENIED);
  return (
    <>
      {denied.length > 0 && (
        <p className="muted" data-code={DENIED}>
          Not visible with your role ({DENIED}): {denied.map((error) => (error.path ?? []).filter((p) => p !== '@').join('.')).join(', ')}
        </p>
      )}
      <ErrorList errors={others} />
    </>
  );
}
