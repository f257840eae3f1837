/** The caller as authorization sees it: signed in or not, and the scopes and permissions some rule names. */
import type { Principal } from '@jarvis/platform/contracts';
import type { AnyOfAll, Requirement } from './rules.ts';

export interface Caller {
  authenticated: boolean;
  scopes: readonly string[];
  permissions: readonly string[];
  /** Equal for callers every rule treats alike: only the scopes and permissions some rule names count. */
  key: string;
}

export function callerOf(principal: Principal, scopesNamed: ReadonlySet<string>, policiesNamed: ReadonlySet<string>): Caller {
  const scopes = principal.scopes.filter((scope) => scopesNamed.has(scope)).sort();
  const permissions = principal.permissions.filter((permission) => policiesNamed.has(permission)).sort();
  const authenticated = principal.tenantId !== null;
  return { authenticated, scopes, permissions, key: JSON.stringify([authenticated, scopes, permissions]) };
}

/** Policy names are Jarvis permission names: a policy holds when the caller has that permission. */
export function satisfies(requirement: Requirement | undefined, caller: Caller): boolean {
  if (!requirement) return true;
  if (requirement.authenticated && !caller.authenticated) return false;
  return (
    requirement.scopes.every((rule) => anyOfAllHeld(rule, caller.scopes)) &&
    requirement.policies.every((rule) => anyOfAllHeld(rule, caller.permissions))
  );
}

/** An empty outer list demands nothing (Router reads it the same way). */
function anyOfAllHeld(rule: AnyOfAll, held: readonly string[]): boolean {
  return rule.length === 0 || rule.some((all) => all.every((name) => held.includes(name)));
}

export function namesIn(requirements: Iterable<Requirement>, pick: (r: Requirement) => readonly AnyOfAll[]): Set<string> {
  const names = new Set<string>();
  for (const requirement of requirements) for (const rule of pick(requirement)) for (const all of rule) for (const n of all) names.add(n);
  return names;
}
