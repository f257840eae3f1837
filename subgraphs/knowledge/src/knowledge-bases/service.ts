import { randomUUID } from 'node:crypto';
import { requirePermission, requireTenant, type Principal } from '@jarvis/platform/contracts';
import { isUniqueViolation, type Database, type Transaction } from '@jarvis/platform/db';
import { badUserInput, conflict, forbidden, notFound } from '@jarvis/platform/errors';
import { checkInput, groupBy, parseInput, tenantLoader } from '@jarvis/platform/subgraph';
import { z } from 'zod';
import type { CreateKnowledgeBaseInput, KnowledgeBaseGrantInput, KnowledgeBaseReaderInput, UpdateKnowledgeBaseInput } from '../generated/schema-types.ts';
import type { VectorStore } from '../vectors/index.ts';
import { accessLevel, atLeast, readerName, readersOf, type AccessLevel } from './access.ts';
import * as documents from '../documents/store.ts';
import { storageReleased } from '../usage.ts';
import * as store from './store.ts';
import type { GrantedKnowledgeBase, Grant } from './store.ts';

const name = z.string().trim().min(1, 'must not be empty').max(200, 'at most 200 characters');
const description = z.string().trim().max(2000, 'at most 2000 characters').nullish();

const createChecks = z.object({ name, description });
const updateChecks = z.object({ id: z.uuid(), name: name.nullish(), description });
const readerChecks = z.object({ knowledgeBaseId: z.uuid(), userId: z.uuid().nullish(), groupId: z.uuid().nullish() });

/** A knowledge base as the caller sees it: with the caller's access level. */
export interface VisibleKnowledgeBase extends GrantedKnowledgeBase {
  access: AccessLevel;
}

export class KnowledgeBaseService {
  private readonly byTenant;
  private readonly byId;
  private readonly grantsById;
  readonly readers: string[];

  constructor(
    private readonly db: Database,
    private readonly principal: Principal,
    private readonly vectors: () => Promise<VectorStore>,
    private readonly outbox: { notify(): void },
  ) {
    this.readers = readersOf(principal);
    this.byTenant = tenantLoader(db, async (tx, tenantIds) =>
      groupBy(await store.knowledgeBasesOf(tx, tenantIds, this.readers), (kb) => kb.tenantId),
    );
    this.byId = tenantLoader(db, async (tx, ids) =>
      new Map((await store.knowledgeBasesByIds(tx, ids, this.readers)).map((kb) => [kb.id, this.visible(kb)])),
    );
    this.grantsById = tenantLoader(db, async (tx, ids) =>
      groupBy(await store.grantsOf(tx, ids), (grant) => grant.knowledgeBaseId),
    );
  }

  /** The tenant's knowledge bases the caller may read. */
  async knowledgeBasesOf(tenantId: string): Promise<VisibleKnowledgeBase[]> {
    const all = (await this.byTenant.load({ tenantId, id: tenantId })) ?? [];
    return all.map((kb) => this.visible(kb)).filter((kb): kb is VisibleKnowledgeBase => kb !== null);
  }

  /** The knowledge base, when the caller may read it; null when there is none or it may not. */
  async knowledgeBase(id: string): Promise<VisibleKnowledgeBase | null> {
    return this.byId.load(this.key(id));
  }

  /** The knowledge base with at least `needed` access for the caller; NOT_FOUND when it cannot even read it. */
  async requireAccess(id: string, needed: AccessLevel): Promise<VisibleKnowledgeBase> {
    const kb = await this.knowledgeBase(id);
    if (!kb) throw notFound(`no knowledge base ${id}`);
    if (!atLeast(kb.access, needed)) throw forbidden(`this needs ${needed} access to the knowledge base`);
    return kb;
  }

  /** Its grants, for a caller who manages it; null otherwise. */
  async grantsOf(kb: VisibleKnowledgeBase): Promise<Grant[] | null> {
    return kb.access === 'MANAGE' ? ((await this.grantsById.load(this.key(kb.id))) ?? []) : null;
  }

  async create(given: CreateKnowledgeBaseInput): Promise<VisibleKnowledgeBase> {
    const tenantId = requireTenant(this.principal);
    const input = checkInput(createChecks, given);
    const row = {
      id: randomUUID(),
      tenantId,
      name: input.name,
      description: input.description ?? null,
      ownerId: this.principal.userId ?? null,
      memberAccess: input.memberAccess ?? 'READ',
    };
    await this.uniqueName(input.name, () => this.inTenant((tx) => store.insertKnowledgeBase(tx, row)));
    return this.reloaded(row.id);
  }

  async update(given: UpdateKnowledgeBaseInput): Promise<VisibleKnowledgeBase> {
    const input = checkInput(updateChecks, given);
    await this.changeManaged(input.id, (tx) =>
      this.uniqueName(input.name ?? '', () =>
        store.updateKnowledgeBase(tx, input.id, {
          name: input.name ?? undefined,
          description: input.description === undefined ? undefined : input.description,
          memberAccess: input.memberAccess ?? undefined,
        }),
      ),
    );
    return this.reloaded(input.id);
  }

  async grant(given: KnowledgeBaseGrantInput): Promise<VisibleKnowledgeBase> {
    const input = checkInput(readerChecks, given);
    const reader = this.requireReader(input);
    await this.changeManaged(input.knowledgeBaseId, (tx) =>
      store.putGrant(tx, this.tenantId, { knowledgeBaseId: input.knowledgeBaseId, reader, level: input.level }),
    );
    return this.reloaded(input.knowledgeBaseId);
  }

  async revoke(given: KnowledgeBaseReaderInput): Promise<VisibleKnowledgeBase> {
    const input = parseInput(readerChecks, given);
    const reader = this.requireReader(input);
    await this.changeManaged(input.knowledgeBaseId, async (tx) => {
      if (!(await store.deleteGrant(tx, input.knowledgeBaseId, reader))) throw notFound(`${reader} holds no grant here`);
    });
    return this.reloaded(input.knowledgeBaseId);
  }

  /**
   * Deletes it with its documents and chunks, then its vectors (search never shows vectors without chunks);
   * its documents' stored bytes are released in the same transaction, as deleting them one by one would.
   */
  async delete(id: string): Promise<boolean> {
    let released = false;
    await this.changeManaged(id, async (tx) => {
      released = await storageReleased(tx, await documents.deleteDocumentsOf(tx, id), this.principal.isolation);
      await store.deleteKnowledgeBase(tx, id);
    });
    if (released) this.outbox.notify();
    await (await this.vectors()).deleteKnowledgeBase(this.tenantId, id, this.principal.isolation);
    return true;
  }

  /** Drops what was loaded, so the next reads see the database as it is now (a subscription's next event). */
  forget(): void {
    this.byTenant.clearAll();
    this.byId.clearAll();
    this.grantsById.clearAll();
  }

  private get tenantId(): string {
    return this.principal.tenantId!;
  }

  /**
   * Every read needs kb:read, whatever field asked: entity references (`_entities`) and fields without a
   * @policy of their own (a passage's or a citation's knowledge base) reach knowledge bases too.
   */
  private key(id: string) {
    return { tenantId: requirePermission(this.principal, 'kb:read'), id };
  }

  private inTenant<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.db.withTenant(requirePermission(this.principal, 'kb:read'), work);
  }

  private visible(kb: GrantedKnowledgeBase): VisibleKnowledgeBase | null {
    const access = accessLevel(this.principal, kb);
    return access === 'NONE' ? null : { ...kb, access };
  }

  /** Runs `change` with the knowledge base locked, when the caller manages it. */
  private async changeManaged(id: string, change: (tx: Transaction) => Promise<unknown>): Promise<void> {
    await this.inTenant(async (tx) => {
      const kb = await store.lockKnowledgeBase(tx, id, this.readers);
      const visible = kb && this.visible(kb);
      if (!visible) throw notFound(`no knowledge base ${id}`);
      if (visible.access !== 'MANAGE') throw forbidden('this needs MANAGE access to the knowledge base');
      await change(tx);
    });
  }

  private async reloaded(id: string): Promise<VisibleKnowledgeBase> {
    this.byId.clear(this.key(id));
    this.grantsById.clear(this.key(id));
    const kb = await this.byId.load(this.key(id));
    if (!kb) throw notFound(`no knowledge base ${id}`);
    return kb;
  }

  private requireReader(input: { userId?: string | null; groupId?: string | null }): string {
    const reader = readerName(input);
    if (!reader) throw badUserInput('name exactly one of userId and groupId', 'userId');
    return reader;
  }

  private async uniqueName<T>(name: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`a knowledge base named "${name}" exists`, 'name');
      throw error;
    }
  }
}
