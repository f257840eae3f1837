/**
 * Quotas: the plan's limits, lowered by the tenant's admins, per-member allowances, and usage against them; and
 * each limit enforced exactly from the request to the ledger — concurrent answers, daily and monthly token
 * budgets, storage — counted answer by answer and document by document, on the embedded default and on the
 * real services (PostgreSQL, Redis, RabbitMQ) when they are configured.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { PLAN_QUOTAS } from '@jarvis/platform/contracts';
import { databaseVariants, uniqueRedisPrefix, waitFor, type DatabaseVariant } from '@jarvis/platform/testing';
import { ANSWER_MODELS, answers, assertRefused, ending, ledger, reservation, setQuota, spent, usageOf, type AnswerEvent } from './answers.ts';
import { addMember, as, errorCodes, respond, signUp, startTestStack, type Member, type TestStack } from './helpers.ts';

const QUOTA = `{ tenant { quota {
  plan tokensToday tokensThisMonth
  limits { tokensPerDay tokensPerMonth storageBytes concurrentStreams requestsPerSecond }
  planLimits { tokensPerDay }
  memberAllowances { user { id } tokensPerDay usedToday }
} } }`;

interface QuotaAnswer {
  tenant: {
    quota: {
      plan: string;
      tokensToday: number;
      tokensThisMonth: number;
      limits: { tokensPerDay: number; tokensPerMonth: number; storageBytes: number; concurrentStreams: number; requestsPerSecond: number };
      planLimits: { tokensPerDay: number };
      memberAllowances: { user: { id: string }; tokensPerDay: number; usedToday: number }[];
    };
  };
}

/** Redis and RabbitMQ from the environment where set, each under names of this stack's own (closing the stack removes them). */
function realServices(): Record<string, string> {
  const { REDIS_URL, AMQP_URL } = process.env;
  return {
    ...(REDIS_URL ? { REDIS_URL, REDIS_KEY_PREFIX: uniqueRedisPrefix() } : {}),
    ...(AMQP_URL ? { AMQP_URL, BUS_NAMESPACE: `test-${randomBytes(5).toString('hex')}` } : {}),
  };
}

/** The embedded default on PGlite; PostgreSQL with every real service configured. */
const servicesOf = (variant: DatabaseVariant) => (variant.url ? realServices() : {});
const describeServices = (services: Record<string, string>) =>
  [services.REDIS_URL ? 'limits in redis' : 'limits in memory', services.AMQP_URL ? 'bus on rabbitmq' : 'in-process bus'].join(', ');

/** Answers long enough that several asked at once are all generating together: each token waits this long. */
const TOKEN_DELAY_MS = 200;
/** Different words, so that no answer comes from the inference cache. */
const SUBJECTS = ['apples', 'bridges', 'copper', 'dolphins', 'engines', 'forests', 'glaciers'];
const question = (subject: string) => `What do we know about ${subject}?`;
const CONCURRENCY_REFUSAL = /answers generated at once/;

for (const variant of databaseVariants()) {
  const services = servicesOf(variant);
  describe(`quotas on ${variant.name}, ${describeServices(services)}`, { skip: variant.skip }, () => {
    let stack: TestStack;
    let chat: ReturnType<typeof answers>;
    let owner: Member;
    let member: Member;
    /** Model tokens the member's answer used, and both answers together. */
    let memberTokens: number;
    let tenantTokens: number;

    before(async () => {
      stack = await startTestStack(variant, {
        AUTH_DEV_LOGIN: 'true',
        CHAT_MODELS: ANSWER_MODELS,
        CHAT_LOCAL_TOKEN_DELAY_MS: String(TOKEN_DELAY_MS),
        CHAT_SEMANTIC_CACHE_THRESHOLD: '1',
        ...services,
      });
      chat = answers(stack);
      owner = await signUp(stack, 'quota', { plan: 'TEAM' });
      member = await addMember(stack, owner, `member@${owner.slug}.test`, 'member');
      // Token usage comes from chat's own events, as real answers: the member's and the owner's.
      const tokensOf = async (asker: Member, question: string) => spent(usageOf((await chat.ask(asker, question)).events));
      memberTokens = await tokensOf(member, 'What is the travel policy?');
      tenantTokens = memberTokens + (await tokensOf(owner, 'Who approves expenses?'));
      await waitFor(async () => (await as<QuotaAnswer>(stack, owner, QUOTA)).tenant.quota.tokensToday, 'both answers in the ledger', {
        until: (tokens) => tokens === tenantTokens,
        timeoutMs: 20_000,
      });
    });
    after(async () => {
      await chat?.close();
      await stack?.close();
    });

    test("a tenant's quota is its plan's, with what it has used today and this month", async () => {
      const { quota } = (await as<QuotaAnswer>(stack, owner, QUOTA)).tenant;
      assert.equal(quota.plan, 'TEAM');
      assert.deepEqual(quota.limits, {
        tokensPerDay: PLAN_QUOTAS.TEAM.tokensPerDay,
        tokensPerMonth: PLAN_QUOTAS.TEAM.tokensPerMonth,
        storageBytes: PLAN_QUOTAS.TEAM.storageBytes,
        concurrentStreams: PLAN_QUOTAS.TEAM.concurrentStreams,
        requestsPerSecond: PLAN_QUOTAS.TEAM.requestsPerSecond,
      });
      assert.deepEqual([quota.tokensToday, quota.tokensThisMonth], [tenantTokens, tenantTokens]);
    });

    test('admins lower limits below the plan, never above it, and null restores the plan', async () => {
      const set = `mutation($q: SetQuotaInput!) { setQuota(input: $q) { limits { tokensPerDay concurrentStreams } planLimits { tokensPerDay } } }`;
      const lowered = await as<{ setQuota: { limits: { tokensPerDay: number; concurrentStreams: number }; planLimits: { tokensPerDay: number } } }>(
        stack,
        owner,
        set,
        { q: { tokensPerDay: 10_000, concurrentStreams: 3 } },
      );
      assert.deepEqual(lowered.setQuota.limits, { tokensPerDay: 10_000, concurrentStreams: 3 });
      assert.equal(lowered.setQuota.planLimits.tokensPerDay, PLAN_QUOTAS.TEAM.tokensPerDay);

      const above = await respond(stack, owner, set, { q: { tokensPerDay: PLAN_QUOTAS.TEAM.tokensPerDay + 1 } });
      assert.deepEqual([above.errors?.[0]?.extensions?.code, above.errors?.[0]?.extensions?.field], ['BAD_USER_INPUT', 'tokensPerDay']);
      assert.equal((await as<QuotaAnswer>(stack, owner, QUOTA)).tenant.quota.limits.tokensPerDay, 10_000, 'nothing changed');
      // Tokens are counted whole: a fraction is refused here rather than failing the services that enforce it.
      const fraction = await respond(stack, owner, set, { q: { tokensPerDay: 10.5 } });
      assert.deepEqual([fraction.errors?.[0]?.extensions?.code, fraction.errors?.[0]?.extensions?.field], ['BAD_USER_INPUT', 'tokensPerDay']);

      const restored = await as<{ setQuota: { limits: { tokensPerDay: number } } }>(stack, owner, set, { q: { concurrentStreams: 3 } });
      assert.equal(restored.setQuota.limits.tokensPerDay, PLAN_QUOTAS.TEAM.tokensPerDay);

      const byMember = await respond(stack, member, set, { q: { tokensPerDay: 1 } });
      assert.deepEqual(errorCodes(byMember), { setQuota: 'UNAUTHORIZED_FIELD_OR_TYPE' });
    });

    test("a member's allowance sits within the tenant's and shows what the member used today", async () => {
      const allow = `mutation($a: MemberAllowanceInput!) { setMemberAllowance(input: $a) { memberAllowances { user { id } tokensPerDay usedToday } } }`;
      const { setMemberAllowance } = await as<{ setMemberAllowance: { memberAllowances: unknown[] } }>(stack, owner, allow, {
        a: { userId: member.userId, tokensPerDay: 5_000 },
      });
      assert.deepEqual(setMemberAllowance.memberAllowances, [{ user: { id: member.userId }, tokensPerDay: 5_000, usedToday: memberTokens }]);

      const tooMuch = await respond(stack, owner, allow, { a: { userId: member.userId, tokensPerDay: PLAN_QUOTAS.TEAM.tokensPerDay + 1 } });
      assert.equal(tooMuch.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');

      const removed = await as<{ setMemberAllowance: { memberAllowances: unknown[] } }>(stack, owner, allow, { a: { userId: member.userId } });
      assert.deepEqual(removed.setMemberAllowance.memberAllowances, []);
    });

    describe('each limit exact from request to ledger', () => {
      /**
       * An admin asking and keeping every answer's USAGE event that spent tokens (the inference cache's answers
       * spend none): what the tenant's budgets and ledger must count.
       */
      function meteredAsker(admin: Member) {
        const spentBy: NonNullable<AnswerEvent['usage']>[] = [];
        return {
          spentBy,
          used: () => spentBy.reduce((sum, usage) => sum + spent(usage), 0),
          async ask(text: string) {
            const { events } = await chat.ask(admin, text);
            const usage = events.find((event) => event.type === 'USAGE')?.usage;
            if (usage && !usage.cacheHit) spentBy.push(usage);
            return events;
          },
        };
      }

      /**
       * Chat learns quotas from the bus. Told to allow no answers at all, it shows it knows when one is refused
       * for that (refused answers spend nothing); an answer admitted before is spent, and kept by the asker.
       */
      async function chatAllowsNoAnswers(admin: Member, asker: ReturnType<typeof meteredAsker>) {
        await setQuota(stack, admin, { concurrentStreams: 0 });
        await waitFor(() => asker.ask('Anyone there?'), 'chat to allow no answers', {
          until: (events) => CONCURRENCY_REFUSAL.test(ending(events).error?.message ?? ''),
          timeoutMs: 20_000,
          intervalMs: 50,
        });
      }

      /**
       * Then `quota`, which allows answers again, shows in the first answer to `text` that is not refused for
       * concurrency: that answer, returned, is the first counted under `quota`.
       */
      async function quotaKnownToChat(admin: Member, asker: ReturnType<typeof meteredAsker>, quota: Parameters<typeof setQuota>[2], text: string) {
        await setQuota(stack, admin, quota);
        return waitFor(() => asker.ask(text), `chat to know ${JSON.stringify(quota)}`, {
          until: (events) => !CONCURRENCY_REFUSAL.test(ending(events).error?.message ?? ''),
          timeoutMs: 20_000,
          intervalMs: 50,
        });
      }

      /** The ledger's model tokens, once they are what the answers' USAGE events say. */
      const ledgerHoldsTokens = (admin: Member, usages: NonNullable<AnswerEvent['usage']>[]) => {
        const expected = {
          PROMPT_TOKENS: usages.reduce((sum, usage) => sum + usage.promptTokens, 0),
          COMPLETION_TOKENS: usages.reduce((sum, usage) => sum + usage.completionTokens, 0),
        };
        return waitFor(async () => {
          const totals = await ledger(stack, admin);
          return { PROMPT_TOKENS: totals.PROMPT_TOKENS, COMPLETION_TOKENS: totals.COMPLETION_TOKENS };
        }, `the ledger to hold ${JSON.stringify(expected)}`, { until: (totals) => JSON.stringify(totals) === JSON.stringify(expected), timeoutMs: 20_000, intervalMs: 100 });
      };

      test('N + 1 answers asked at once against N concurrent answers: exactly N are DONE, one is refused, the ledger holds the N', async () => {
        const STREAMS = 3;
        const admin = await signUp(stack, 'streams');
        const asker = meteredAsker(admin);
        await chatAllowsNoAnswers(admin, asker);
        assert.equal(ending(await quotaKnownToChat(admin, asker, { concurrentStreams: STREAMS }, 'Anyone there now?')).type, 'DONE');

        const ids = await Promise.all(SUBJECTS.slice(0, STREAMS + 1).map((subject) => chat.start(admin, question(subject))));
        const streams = await Promise.all(ids.map((id) => chat.events(admin, id)));
        const admitted = streams.filter((events) => ending(events).type === 'DONE');
        const refused = streams.filter((events) => ending(events).type !== 'DONE');
        assert.equal(admitted.length, STREAMS, `admitted: ${JSON.stringify(streams.map(ending))}`);
        assert.equal(refused.length, 1);
        assertRefused(refused[0]!, new RegExp(`the tenant may have ${STREAMS} answers generated at once`));
        await ledgerHoldsTokens(admin, [...asker.spentBy, ...admitted.map(usageOf)]);
      });

      /**
       * Answers asked one after another against a token budget of the tenant's: each is admitted exactly when what
       * the earlier ones spent (their USAGE events) plus its reservation (its prompt tokens, measured in a tenant
       * without the budget, and the answer's room) fits the budget; the budget is set for three answers, so the
       * fourth is the first refused. The ledger then holds what the admitted answers spent.
       */
      async function exactTokenBudget(budget: 'tokensPerDay' | 'tokensPerMonth', refusal: (limit: number) => RegExp) {
        const questions = SUBJECTS.map(question);
        // A prompt is the question with the instructions (no passages, no history), whichever tenant asks it.
        const reference = await signUp(stack, `reference-${budget.toLowerCase()}`);
        const measured = (await Promise.all(questions.map((text) => chat.ask(reference, text)))).map((answer) => usageOf(answer.events));
        const admin = await signUp(stack, budget.toLowerCase());
        const asker = meteredAsker(admin);
        await chatAllowsNoAnswers(admin, asker);
        // An answer spent before the budget is set counts against it all the same.
        const setAt = asker.used();
        const limit = setAt + spent(measured[0]!) + spent(measured[1]!) + reservation(measured[2]!.promptTokens) + Math.floor(spent(measured[2]!) / 2);

        const outcomes: string[] = [];
        const predicted: string[] = [];
        for (const [i, text] of questions.entries()) {
          const fits = asker.used() + reservation(measured[i]!.promptTokens) <= limit;
          predicted.push(fits ? 'DONE' : 'ERROR');
          const events = i === 0 ? await quotaKnownToChat(admin, asker, { [budget]: limit }, text) : await asker.ask(text);
          outcomes.push(ending(events).type);
          if (!fits) {
            assertRefused(events, refusal(limit));
            break;
          }
          assert.deepEqual(usageOf(events), measured[i], `answer ${i + 1} spent what the same question spends elsewhere`);
        }
        assert.deepEqual(outcomes, predicted, `outcomes against a budget of ${limit}`);
        assert.deepEqual(predicted, ['DONE', 'DONE', 'DONE', 'ERROR'], 'the budget was set for three answers');
        await ledgerHoldsTokens(admin, asker.spentBy);
      }

      test("a tenant's tokens per day admit answers while their reservations fit, and exactly the first that does not is refused", () =>
        exactTokenBudget('tokensPerDay', (limit) => new RegExp(`the tenant's ${limit} tokens a day are used up`)));

      test("a tenant's tokens per month admit answers while their reservations fit, and exactly the first that does not is refused", () =>
        exactTokenBudget('tokensPerMonth', (limit) => new RegExp(`the tenant's ${limit} tokens a month are used up`)));

      test('storage admits documents while they fit, exactly filling it, refuses the next at addDocument, and the ledger holds the admitted bytes', async () => {
        const admin = await signUp(stack, 'storage-exact');
        const archive = await createKnowledgeBase(admin, 'Archive');
        const parts = [300, 500, 400, 200].map((size, i) => ({ title: `Part ${i + 1}`, content: textOfBytes(`# Part ${i + 1}\n\n`, size) }));
        const limit = 300 + 500 + 400; // the third fills the quota to the byte
        await setQuota(stack, admin, { storageBytes: limit });
        await storageLimitKnownToKnowledge(admin, limit);

        let stored = 0;
        const admitted: string[] = [];
        const outcomes: string[] = [];
        for (const part of parts) {
          const bytes = Buffer.byteLength(part.content);
          const fits = stored + bytes <= limit;
          const response = await respond<{ addDocument: { id: string; byteSize: number } }>(stack, admin, ADD_DOCUMENT, { input: { knowledgeBaseId: archive, ...part } });
          outcomes.push(response.errors ? errorCodes(response).addDocument! : 'ADMITTED');
          if (!fits) {
            assert.match(response.errors?.[0]?.message ?? '', new RegExp(`${stored} of ${limit} bytes stored, and this document has ${bytes}`));
            break;
          }
          assert.equal(response.data?.addDocument.byteSize, bytes, JSON.stringify(response));
          admitted.push(response.data!.addDocument.id);
          stored += bytes;
        }
        assert.deepEqual(outcomes, ['ADMITTED', 'ADMITTED', 'ADMITTED', 'QUOTA_EXCEEDED']);
        for (const id of admitted) await documentReady(admin, id);
        const { knowledgeBase } = await as<{ knowledgeBase: { documents: { id: string }[] } }>(stack, admin, `query($id: ID!) { knowledgeBase(id: $id) { documents { id } } }`, { id: archive });
        assert.deepEqual(knowledgeBase.documents.map((doc) => doc.id).sort(), [...admitted].sort(), 'the refused document was not stored');
        await waitFor(async () => (await ledger(stack, admin)).STORAGE_BYTES, `the ledger to hold ${limit} stored bytes`, {
          until: (bytes) => bytes === limit,
          timeoutMs: 30_000,
          intervalMs: 100,
        });
      });

      const createKnowledgeBase = async (admin: Member, name: string) =>
        (await as<{ createKnowledgeBase: { id: string } }>(stack, admin, `mutation($n: String!) { createKnowledgeBase(input: { name: $n }) { id } }`, { n: name }))
          .createKnowledgeBase.id;

      const documentReady = (admin: Member, id: string) =>
        waitFor(async () => (await as<{ document: { status: string } }>(stack, admin, `query($id: ID!) { document(id: $id) { status } }`, { id })).document.status, `document ${id} READY`, {
          until: (status) => status === 'READY',
          timeoutMs: 30_000,
          intervalMs: 50,
        });

      /**
       * Knowledge learns the storage limit from the bus: once it knows `limit`, a document one byte larger is
       * refused, naming the limit. One admitted before that (under the plan's limit) is deleted again at once.
       */
      async function storageLimitKnownToKnowledge(admin: Member, limit: number) {
        const probes = await createKnowledgeBase(admin, 'Probes');
        let attempt = 0;
        const refused = await waitFor(
          async () => {
            const input = { knowledgeBaseId: probes, title: 'Probe', content: textOfBytes(`# Probe ${++attempt}\n\n`, limit + 1) };
            const response = await respond<{ addDocument: { id: string } }>(stack, admin, ADD_DOCUMENT, { input });
            if (response.data?.addDocument) await as(stack, admin, `mutation($id: ID!) { deleteDocument(id: $id) }`, { id: response.data.addDocument.id });
            return response;
          },
          `knowledge to know the storage limit of ${limit} bytes`,
          { until: (response) => Boolean(response.errors), timeoutMs: 20_000, intervalMs: 50 },
        );
        assert.deepEqual(errorCodes(refused), { addDocument: 'QUOTA_EXCEEDED' });
        assert.match(refused.errors![0]!.message, new RegExp(`0 of ${limit} bytes stored`));
      }
    });
  });
}

const ADD_DOCUMENT = `mutation($input: AddDocumentInput!) { addDocument(input: $input) { id byteSize } }`;

/** Markdown of exactly `bytes` bytes: `heading`, then words. */
function textOfBytes(heading: string, bytes: number): string {
  const words = 'Stored words for the archive. '.repeat(Math.ceil(bytes / 30));
  const text = `${heading}${words}`.slice(0, bytes - 1).trimEnd();
  return `${text}${'.'.repeat(bytes - Buffer.byteLength(text))}`;
}
