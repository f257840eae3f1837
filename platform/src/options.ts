/**
 * Options merged over defaults: `{ ...DEFAULTS, ...definedOnly(options) }`, where an option given as
 * `undefined` keeps its default instead of overwriting it.
 */
export function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}
