/** A JSON value, collapsed: a one-line preview that opens to the whole value, pretty-printed. */
export function JsonView({ value, label = 'output' }: { value: unknown; label?: string }) {
  if (value === null || value === undefined) return <span className="muted">—</span>;
  const text = JSON.stringify(value, null, 2);
  const preview = JSON.stringify(value);
  return (
    <details className="json">
      <summary>
        <span className="visually-hidden">{label}: </span>
        <code>{preview.length > 60 ? `${preview.slice(0, 57)}…` : preview}</code>
      </summary>
      <pre>{text}</pre>
    </details>
  );
}
