/**
 * The escalation rule as a property: a few hundred random changes to roles, groups, members, invitations,
 * service accounts and API keys, each by a random member or service account calling as itself, and after each
 * one that succeeded, what everyone holds is compared with what they held before. Nobody may gain a permission
 * the caller lacks; nobody may lose a permission, role, group or key unless the caller held what went and the
 * loser held nothing the caller lacks; a new key carries only scopes the caller holds, for an account holding
 * nothing the caller lacks. A refused change writes nothing.
 *
 * ESCALATION_SEED=<n> replays a run; ESCALATION_OPERATIONS=<n> changes its length.
 */
import assert from 'node:assert/strict';
import { randomInt, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { BUILT_IN_ROLES, heldScopes, isScope, PERMISSIONS, type Principal } from '@jarvis/platform/contracts';
import type { Database } from '@jarvis/platform/db';
import { AppError } from '@jarvis/platform/errors';
import { databaseVariants, openTestDatabase, seededRandom, type SeededRandom } from '@jarvis/platform/testing';
import { AccessService, Credentials } from '../src/access/service.ts';
import * as access from '../src/access/store.ts';
import { insertTenant, insertUser } from '../src/tenants/store.ts';

const MIGRATIONS = fileURLToPath(new URL('../migrations/', import.meta.url));
const OPERATIONS = Number(process.env.ESCALATION_OPERATIONS ?? 300);
const ALL_PERMISSIONS = Object.keys(PERMISSIONS);
/** What a key may be asked to carry: the one real scope, reserved ones, a permission's name, made-up ones. */
const SCOPE_CANDIDATES = ['usage:write', 'admin:all', 'jarvis:operator', 'jarvis:meter', 'kb:read', 'usage:write2'];
/** How a change may be refused; anything else fails the run. */
const REFUSALS = new Set(['FORBIDDEN', 'BAD_USER_INPUT', 'CONFLICT', 'NOT_FOUND']);

type Random = SeededRandom;

interface Holding {
  /** Effective roles: held directly or through a group. */
  roles: Set<string>;
  direct: Set<string>;
  permissions: Set<string>;
}
interface UserState extends Holding {
  email: string;
  groups: Set<string>;
}
interface AccountState extends Holding {
  name: string;
  liveKeys: Set<string>;
}
interface GroupState {
  name: string;
  roles: Set<string>;
}
interface KeyState {
  name: string;
  accountId: string;
  scopes: string[];
}

/** Everything the tenant holds, read straight from the tables (not through the code under test). */
interface Snapshot {
  roles: Map<string, string[]>;
  users: Map<string, UserState>;
  accounts: Map<string, AccountState>;
  groups: Map<string, GroupState>;
  keys: Map<string, KeyState>;
}

async function snapshot(db: Database, tenantId: string): Promise<Snapshot> {
  return db.withTenant(tenantId, async (tx) => {
    const custom = await tx.query<{ name: string; permissions: string[] }>(`SELECT name, permissions FROM roles`);
    const roles = new Map<string, string[]>([...Object.entries(BUILT_IN_ROLES).map(([n, p]) => [n, [...p]] as [string, string[]]), ...custom.map((r) => [r.name, r.permissions] as [string, string[]])]);
    const assignments = await tx.query<{ role: string; user_id: string | null; group_id: string | null; service_account_id: string | null }>(
      `SELECT role, user_id, group_id, service_account_id FROM role_assignments`,
    );
    const memberships = await tx.query<{ group_id: string; user_id: string }>(`SELECT group_id, user_id FROM group_members`);
    const groups = new Map(
      (await tx.query<{ id: string; name: string }>(`SELECT id, name FROM groups`)).map((g) => [g.id, { name: g.name, roles: new Set<string>() }]),
    );
    const empty = () => ({ roles: new Set<string>(), direct: new Set<string>(), permissions: new Set<string>() });
    const users = new Map(
      (await tx.query<{ id: string; email: string }>(`SELECT id, email FROM users`)).map((u) => [u.id, { email: u.email, groups: new Set<string>(), ...empty() }]),
    );
    const accounts = new Map(
      (await tx.query<{ id: string; name: string }>(`SELECT id, name FROM service_accounts`)).map((a) => [a.id, { name: a.name, liveKeys: new Set<string>(), ...empty() }]),
    );
    const keys = new Map<string, KeyState>();
    for (const key of await tx.query<{ id: string; name: string; service_account_id: string; scopes: string[]; live: boolean }>(
      `SELECT id, name, service_account_id, scopes, revoked_at IS NULL AS live FROM api_keys`,
    )) {
      keys.set(key.id, { name: key.name, accountId: key.service_account_id, scopes: key.scopes });
      if (key.live) accounts.get(key.service_account_id)!.liveKeys.add(key.id);
    }
    for (const a of assignments) {
      if (a.group_id) groups.get(a.group_id)!.roles.add(a.role);
      const holder = a.user_id ? users.get(a.user_id) : a.service_account_id ? accounts.get(a.service_account_id) : undefined;
      holder?.direct.add(a.role);
      holder?.roles.add(a.role);
    }
    for (const m of memberships) {
      const user = users.get(m.user_id)!;
      user.groups.add(m.group_id);
      for (const role of groups.get(m.group_id)!.roles) user.roles.add(role);
    }
    for (const holder of [...users.values(), ...accounts.values()]) {
      for (const role of holder.roles) for (const p of roles.get(role) ?? []) holder.permissions.add(p);
    }
    return { roles, users, accounts, groups, keys };
  });
}

/** A caller as its token would carry it: its effective roles and permissions, and a key's scopes. */
function principalOf(state: Snapshot, tenantId: string, caller: { userId: string } | { keyId: string }): Principal {
  const base = { tenantId, isolation: 'SHARED' as const, plan: 'ENTERPRISE' as const };
  if ('userId' in caller) {
    const user = state.users.get(caller.userId)!;
    return { ...base, userId: caller.userId, roles: [...user.roles], permissions: [...user.permissions], groups: [...user.groups], scopes: [] };
  }
  const key = state.keys.get(caller.keyId)!;
  const account = state.accounts.get(key.accountId)!;
  return { ...base, apiKeyId: caller.keyId, roles: [...account.roles], permissions: [...account.permissions], scopes: key.scopes.filter(isScope) };
}

const sortedBy = <T>(map: Map<string, T>, label: (value: T) => string) =>
  [...map].sort(([, a], [, b]) => label(a).localeCompare(label(b))).map(([id]) => id);

/** The random changes, each picking its arguments from the tenant as it stands. */
function operations(state: Snapshot, random: Random, counter: () => number, callerId: string | undefined) {
  const users = sortedBy(state.users, (u) => u.email);
  const groups = sortedBy(state.groups, (g) => g.name);
  const accounts = sortedBy(state.accounts, (a) => a.name);
  const keys = sortedBy(state.keys, (k) => k.name);
  const roles = [...state.roles.keys()].sort();
  const customRoles = roles.filter((r) => !(r in BUILT_IN_ROLES));
  const roleOrUnknown = () => (random.chance(0.05) ? 'no-such-role' : random.pick(roles)!);
  const holder = () => {
    const kind = random.pick(['userId', 'groupId', 'serviceAccountId'] as const)!;
    const id = random.pickOr(kind === 'userId' ? users : kind === 'groupId' ? groups : accounts, undefined);
    return id ? { [kind]: id } : { userId: users[0]! };
  };
  // Sorted, so that a seed replays the same run whatever order the database returns rows in.
  const sorted = (roleNames: Set<string>) => [...roleNames].sort();
  const heldAssignment = () => {
    const held = [
      ...users.flatMap((id) => sorted(state.users.get(id)!.direct).map((role) => ({ role, userId: id }))),
      ...groups.flatMap((id) => sorted(state.groups.get(id)!.roles).map((role) => ({ role, groupId: id }))),
      ...accounts.flatMap((id) => sorted(state.accounts.get(id)!.direct).map((role) => ({ role, serviceAccountId: id }))),
    ];
    return random.chance(0.8) && held.length ? random.pick(held)! : { role: roleOrUnknown(), ...holder() };
  };
  const membership = () => {
    const held = users.flatMap((userId) => groups.filter((groupId) => state.users.get(userId)!.groups.has(groupId)).map((groupId) => ({ groupId, userId })));
    return random.chance(0.8) && held.length ? random.pick(held)! : { groupId: random.pickOr(groups, randomUUID()), userId: random.pick(users)! };
  };
  const keyScopes = () => (random.chance(0.5) ? random.subset(['usage:write'], 0.5) : random.subset(SCOPE_CANDIDATES, 0.3));
  const joiner = () => (callerId && state.users.has(callerId) && random.chance(0.4) ? callerId : random.pick(users)!);

  return {
    createRole: (s: AccessService) =>
      s.createRole({ name: `custom-${counter()}`, permissions: random.subset(ALL_PERMISSIONS).concat(random.pick(ALL_PERMISSIONS)!) }),
    deleteRole: (s: AccessService) => s.deleteRole(random.chance(0.9) && customRoles.length ? random.pick(customRoles)! : roleOrUnknown()),
    assignRole: (s: AccessService) => s.assignRole({ role: roleOrUnknown(), ...holder() }),
    revokeRole: (s: AccessService) => s.revokeRole(heldAssignment()),
    removeMember: (s: AccessService) => s.removeMember(random.pick(users)!),
    createGroup: (s: AccessService) => s.createGroup({ name: `group-${counter()}` }),
    deleteGroup: (s: AccessService) => s.deleteGroup(random.pickOr(groups, randomUUID())),
    addGroupMember: (s: AccessService) => s.changeGroupMembership(random.pickOr(groups, randomUUID()), joiner(), 'add'),
    removeGroupMember: (s: AccessService) => {
      const { groupId, userId } = membership();
      return s.changeGroupMembership(groupId, userId, 'remove');
    },
    inviteAndAccept: async (s: AccessService, credentials: Credentials) => {
      const n = counter();
      const { token } = await s.inviteUser({ email: `invited-${n}@t.test`, role: roleOrUnknown() });
      return credentials.acceptInvitation({ token, name: `Invited ${n}` });
    },
    createServiceAccount: (s: AccessService) => s.createServiceAccount({ name: `account-${counter()}`, roles: random.subset(roles, 0.15) }),
    createApiKey: (s: AccessService) =>
      s.createApiKey({ serviceAccountId: random.pickOr(accounts, randomUUID()), name: `key-${counter()}`, scopes: keyScopes() }),
    revokeApiKey: (s: AccessService) => s.revokeApiKey(random.pickOr(keys, randomUUID())),
  };
}
type OperationName = keyof ReturnType<typeof operations>;

/** The permission each change needs in the first place, so most callers picked for it get past that check. */
const NEEDS: Record<OperationName, string> = {
  createRole: 'tenant:admin',
  deleteRole: 'tenant:admin',
  assignRole: 'members:manage',
  revokeRole: 'members:manage',
  removeMember: 'members:manage',
  createGroup: 'members:manage',
  deleteGroup: 'members:manage',
  addGroupMember: 'members:manage',
  removeGroupMember: 'members:manage',
  inviteAndAccept: 'members:manage',
  createServiceAccount: 'apikeys:manage',
  createApiKey: 'apikeys:manage',
  revokeApiKey: 'apikeys:manage',
};

const missingFrom = (held: Iterable<string>, wanted: Iterable<string>) => {
  const have = new Set(held);
  return [...new Set(wanted)].filter((p) => !have.has(p));
};

/** What one subject gained and lost in a change; `heldBefore` only when it lost anything. */
interface SubjectChange {
  who: string;
  gained: string[];
  lost: string[];
  takenAway: string[];
  heldBefore: string[];
}
interface Loss {
  label: string;
  permissions: string[];
}

/** Each user's or service account's change, its lost roles and whatever else `otherLosses` finds. */
function subjectChanges<S extends Holding>(
  catalogue: Map<string, string[]>,
  before: Map<string, S>,
  after: Map<string, S>,
  name: (subject: S) => string,
  otherLosses: (was: S, now: S | undefined) => Loss[],
): SubjectChange[] {
  return [...new Set([...before.keys(), ...after.keys()])].map((id) => {
    const was = before.get(id);
    const now = after.get(id);
    const who = name((was ?? now)!);
    const gained = missingFrom(was?.permissions ?? [], now?.permissions ?? []);
    if (!was) return { who, gained, lost: [], takenAway: [], heldBefore: [] };
    const roles = now ? [...new Set([...missingFrom(now.roles, was.roles), ...missingFrom(now.direct, was.direct)])] : [...was.roles];
    const losses = [...roles.map((role) => ({ label: `role ${role}`, permissions: catalogue.get(role) ?? [] })), ...otherLosses(was, now)];
    if (!now) losses.push({ label: 'its membership', permissions: [] });
    const permissions = now ? missingFrom(now.permissions, was.permissions) : [...was.permissions];
    const lowered = losses.length > 0 || permissions.length > 0;
    return {
      who,
      gained,
      lost: [...losses.map((loss) => loss.label), ...permissions],
      takenAway: [...losses.flatMap((loss) => loss.permissions), ...permissions],
      heldBefore: lowered ? [...was.permissions] : [],
    };
  });
}

/** Asserts the rule over one successful change by `caller`, from the tenant as it stood before and after. */
function assertRuleHeld(before: Snapshot, after: Snapshot, caller: Principal) {
  const callerHolds = (wanted: Iterable<string>, what: string) =>
    assert.deepEqual(missingFrom(caller.permissions, wanted), [], `${what}; the caller lacks these`);
  const rolePermissions = (roles: Iterable<string>) => [...roles].flatMap((role) => before.roles.get(role) ?? []);
  const groupPermissions = (groupId: string) => rolePermissions(before.groups.get(groupId)!.roles);

  const changes = [
    ...subjectChanges(before.roles, before.users, after.users, (u) => u.email, (was, now) =>
      (now ? missingFrom(now.groups, was.groups) : [...was.groups]).map((g) => ({ label: `group ${before.groups.get(g)!.name}`, permissions: groupPermissions(g) })),
    ),
    ...subjectChanges(before.roles, before.accounts, after.accounts, (a) => a.name, (was, now) =>
      (now ? missingFrom(now.liveKeys, was.liveKeys) : [...was.liveKeys]).map((k) => ({ label: `key ${before.keys.get(k)!.name}`, permissions: [] })),
    ),
  ];
  for (const change of changes) {
    callerHolds(change.gained, `${change.who} gained ${change.gained.join(', ')}`);
    callerHolds(change.takenAway, `${change.who} lost ${change.lost.join(', ')}`);
    callerHolds(change.heldBefore, `${change.who} lost ${change.lost.join(', ')} while holding more than the caller`);
  }
  for (const [id, was] of before.groups) {
    const now = after.groups.get(id);
    callerHolds(rolePermissions(now ? missingFrom(now.roles, was.roles) : was.roles), `group ${was.name} lost roles`);
  }
  for (const [id, now] of after.groups) {
    callerHolds(rolePermissions(missingFrom(before.groups.get(id)?.roles ?? [], now.roles)), `group ${now.name} gained roles`);
  }
  for (const [id, key] of after.keys) {
    if (before.keys.has(id)) continue;
    assert.deepEqual(missingFrom(heldScopes(caller), key.scopes), [], `key ${key.name} carries scopes the caller does not hold`);
    callerHolds(after.accounts.get(key.accountId)!.permissions, `key ${key.name} acts as an account holding permissions`);
  }
}

/** A tenant with an owner, admins, members and viewers, custom roles, groups holding roles, service accounts with keys. */
async function seedTenant(db: Database, random: Random): Promise<string> {
  const tenantId = randomUUID();
  await db.withTenant(tenantId, async (tx) => {
    await insertTenant(tx, { id: tenantId, name: 'Escalation', slug: `esc-${tenantId.slice(0, 8)}`, plan: 'ENTERPRISE', isolation: 'SHARED' });
    const customRoles = ['custom-a', 'custom-b', 'custom-c', 'custom-d'];
    for (const name of customRoles) {
      await access.insertRole(tx, tenantId, { name, description: null, permissions: [...new Set([...random.subset(ALL_PERMISSIONS), random.pick(ALL_PERMISSIONS)!])] });
    }
    const roles = [...Object.keys(BUILT_IN_ROLES), ...customRoles];
    const assign = (role: string, holder: access.Holder) => access.assignRole(tx, randomUUID(), tenantId, role, holder);
    const users: string[] = [];
    for (const [role, count] of [['owner', 1], ['admin', 3], ['member', 3], ['viewer', 2]] as const) {
      for (let i = 0; i < count; i++) {
        const user = await insertUser(tx, { id: randomUUID(), tenantId, email: `${role}-${i}@t.test`, name: `${role} ${i}` });
        await assign(role, { userId: user.id });
        for (const extra of random.subset(customRoles, 0.2)) await assign(extra, { userId: user.id });
        users.push(user.id);
      }
    }
    for (let i = 0; i < 4; i++) {
      const group = await access.insertGroup(tx, { id: randomUUID(), tenantId, name: `seed-group-${i}` });
      // The first group holds the owner role: the reported escalation.
      for (const role of i === 0 ? ['owner'] : [random.pick(roles)!, ...random.subset(customRoles, 0.3)]) await assign(role, { groupId: group.id });
      for (const userId of random.subset(users, 0.3)) await access.addGroupMember(tx, tenantId, group.id, userId);
    }
    for (let i = 0; i < 3; i++) {
      const account = await access.insertServiceAccount(tx, { id: randomUUID(), tenantId, name: `seed-account-${i}` });
      for (const role of random.subset(roles, 0.3)) await assign(role, { serviceAccountId: account.id });
      const scopes = random.subset(['usage:write', 'admin:all']);
      await access.insertApiKey(tx, { id: randomUUID(), tenantId, serviceAccountId: account.id, name: `seed-key-${i}`, scopes, expiresAt: null }, randomUUID());
    }
  });
  return tenantId;
}

/** A caller for `operation`: most often one holding the permission it needs, so the escalation checks are reached. */
function pickCaller(state: Snapshot, random: Random, operation: OperationName): { userId: string } | { keyId: string } {
  const liveKeys = sortedBy(state.keys, (k) => k.name).filter((id) => state.accounts.get(state.keys.get(id)!.accountId)?.liveKeys.has(id));
  const candidates = [
    ...sortedBy(state.users, (u) => u.email).map((userId) => ({ caller: { userId }, permissions: state.users.get(userId)!.permissions })),
    ...liveKeys.map((keyId) => ({ caller: { keyId }, permissions: state.accounts.get(state.keys.get(keyId)!.accountId)!.permissions })),
  ];
  const able = candidates.filter((c) => c.permissions.has(NEEDS[operation]));
  return (random.chance(0.85) && able.length ? random.pick(able)! : random.pick(candidates)!).caller;
}

async function run(db: Database, seed: number) {
  const random = seededRandom(seed);
  const tenantId = await seedTenant(db, random);
  const credentials = new Credentials(db);
  let n = 0;
  const counter = () => n++;
  const outcomes = { succeeded: 0, refused: new Map<string, number>(), byOperation: new Map<string, Record<string, number>>() };
  const count = (operation: string, outcome: string) => {
    const counts = outcomes.byOperation.get(operation) ?? {};
    counts[outcome] = (counts[outcome] ?? 0) + 1;
    outcomes.byOperation.set(operation, counts);
  };
  const names = Object.keys(NEEDS) as OperationName[];

  for (let i = 0; i < OPERATIONS; i++) {
    const before = await snapshot(db, tenantId);
    const operation = random.pick(names)!;
    const caller = pickCaller(before, random, operation);
    const principal = principalOf(before, tenantId, caller);
    const step = `#${i} ${operation} by ${'userId' in caller ? before.users.get(caller.userId)!.email : `key ${before.keys.get(caller.keyId)!.name}`}`;
    const run = operations(before, random, counter, principal.userId)[operation];
    try {
      await run(new AccessService(db, principal), credentials);
    } catch (error) {
      if (!(error instanceof AppError) || !REFUSALS.has(error.code)) throw new Error(`${step} failed unexpectedly: ${(error as Error).stack}`);
      outcomes.refused.set(error.code, (outcomes.refused.get(error.code) ?? 0) + 1);
      count(operation, error.code);
      assert.deepEqual(await snapshot(db, tenantId), before, `${step} was refused (${error.message}) but changed something`);
      continue;
    }
    outcomes.succeeded++;
    count(operation, 'ok');
    try {
      assertRuleHeld(before, await snapshot(db, tenantId), principal);
    } catch (error) {
      throw new Error(`${step} broke the rule: ${(error as Error).message}`, { cause: error });
    }
  }
  return outcomes;
}

for (const variant of databaseVariants()) {
  describe(`the escalation rule under random changes, on ${variant.name}`, { skip: variant.skip }, () => {
    let db: Database & { close(): Promise<void> };
    before(async () => {
      db = await openTestDatabase(variant, 'tenancy');
      await db.migrate(MIGRATIONS);
    });
    after(() => db?.close());

    test(`${OPERATIONS} random changes by random callers: nobody gives what they lack or lowers someone holding more`, async (t) => {
      const seed = Number(process.env.ESCALATION_SEED ?? randomInt(2 ** 31));
      let outcomes: Awaited<ReturnType<typeof run>>;
      try {
        outcomes = await run(db, seed);
      } catch (error) {
        throw new Error(`seed ${seed} (replay with ESCALATION_SEED=${seed}): ${(error as Error).message}`, { cause: error });
      }
      const refused = [...outcomes.refused.values()].reduce((a, b) => a + b, 0);
      t.diagnostic(`seed ${seed}: ${outcomes.succeeded} succeeded, refused ${JSON.stringify(Object.fromEntries(outcomes.refused))}`);
      t.diagnostic(`by operation: ${JSON.stringify(Object.fromEntries(outcomes.byOperation))}`);
      assert.ok(outcomes.succeeded >= OPERATIONS / 5, `seed ${seed}: only ${outcomes.succeeded} of ${OPERATIONS} changes succeeded`);
      assert.ok((outcomes.refused.get('FORBIDDEN') ?? 0) >= OPERATIONS / 20, `seed ${seed}: only ${outcomes.refused.get('FORBIDDEN') ?? 0} changes were forbidden of ${refused} refused`);
      const neverDone = Object.keys(NEEDS).filter((operation) => !outcomes.byOperation.get(operation)?.ok);
      assert.deepEqual(neverDone, [], `seed ${seed}: these changes never succeeded, so the rule was not tried on them`);
    });
  });
}
