/**
 * Chat's limits per member and per tenant, end to end: a member's daily token allowance (usage's
 * setMemberAllowance, announced to chat on the bus) is reserved against like the tenant's budgets, so an
 * answer that would exceed it ends in QUOTA_EXCEEDED and spends nothing; and a reader who saw DONE may ask again
 * at once without being refused for the tenant's concurrent answers — also when the limit store is far enough
 * away that freeing a slot takes longer than asking again. On the embedded limit store, and on Redis when
 * REDIS_URL is set.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { databaseVariants, deleteRedisKeys, redisVariants, uniqueRedisPrefix, waitFor } from '@jarvis/platform/testing';
import { ANSWER_MODELS, answers, assertRefused, ending, reservation, usageOf, type AnswerEvent } from './answers.ts';
import { addMember, as, signUp, startTestStack, type Member, type TestStack } from './helpers.ts';

const READERS_ASK_AGAIN = 'readers who ask again the moment they see DONE are never refused for the concurrent answers';

/** A question whose prompt alone is larger than any allowance these tests set below it. */
const PROBE = `Summarise what we know about ${Array.from({ length: 500 }, (_, i) => `topic${i}`).join(' ')}`;
/** Different words, so that no answer comes from the semantic cache. */
const SUBJECTS = ['apples', 'bridges', 'copper', 'dolphins', 'engines', 'forests', 'glaciers', 'harbours', 'islands', 'jungles'];

for (const variant of databaseVariants()) {
  for (const store of redisVariants()) {
    describe(`chat limits on ${variant.name}, limits in ${store.name}`, { skip: variant.skip || store.skip }, () => {
      let stack: TestStack;
      let chat: ReturnType<typeof answers>;
      let owner: Member;
      let probeReservation: number;
      const redisPrefix = uniqueRedisPrefix();

      before(async () => {
        stack = await startTestStack(variant, {
          AUTH_DEV_LOGIN: 'true',
          CHAT_MODELS: ANSWER_MODELS,
          CHAT_LOCAL_TOKEN_DELAY_MS: '0',
          CHAT_SEMANTIC_CACHE_THRESHOLD: '1',
          ...(store.url ? { REDIS_URL: store.url, REDIS_KEY_PREFIX: redisPrefix } : {}),
        });
        chat = answers(stack);
        // Past the gateway: the per-address sign-up allowance is not what this counts.
        owner = await signUp(stack, 'allowances', { pastGateway: true });
        // The owner's answer to the probe is cached: a member asking it again spends no tokens.
        const probe = await chat.ask(owner, PROBE);
        assert.equal(ending(probe.events).type, 'DONE');
        probeReservation = reservation(usageOf(probe.events).promptTokens);
      });
      after(async () => {
        await chat?.close();
        await stack?.close();
        if (store.url) await deleteRedisKeys(store.url, redisPrefix);
      });

      const allow = (member: Member, tokensPerDay: number) =>
        as(stack, owner, `mutation($a: MemberAllowanceInput!) { setMemberAllowance(input: $a) { plan } }`, { a: { userId: member.userId, tokensPerDay } });

      /**
       * Chat learns allowances from the bus: once it knows the member's, the probe's reservation exceeds it. Until
       * then the probe comes from the cache, so waiting spends none of the member's tokens.
       */
      const allowanceKnownToChat = (member: Member) =>
        waitFor(async () => (await chat.ask(member, PROBE)).events, "chat to know the member's allowance", {
          until: (events) => ending(events).type === 'ERROR',
          timeoutMs: 20_000,
          intervalMs: 50,
        });

      const tokensByMember = async () => {
        const { tenant } = await as<{ tenant: { usage: { groups: { key: string | null; totals: { metric: string; quantity: number }[] }[] } } }>(
          stack,
          owner,
          `{ tenant { usage(groupBy: USER) { groups { key totals { metric quantity } } } } }`,
        );
        const tokens = (totals: { metric: string; quantity: number }[]) =>
          totals.filter((t) => t.metric === 'PROMPT_TOKENS' || t.metric === 'COMPLETION_TOKENS').reduce((sum, t) => sum + t.quantity, 0);
        return new Map(tenant.usage.groups.map((group) => [group.key, tokens(group.totals)]));
      };

      /** Chat's count of answers refused for a member's allowance (its /metrics). */
      const memberRejections = async () => {
        const metrics = await (await fetch(stack.subgraphUrls.chat!.replace(/\/graphql$/, '/metrics'))).text();
        const line = metrics.match(/^jarvis_limit_rejections_total\{[^}]*limit="member_tokens_per_day"[^}]*\} (\d+)$/m);
        return Number(line?.[1] ?? 0);
      };

      test('a member whose 10 tokens a day cannot hold an answer is refused every one, and spends nothing; others answer on', async () => {
        const capped = await addMember(stack, owner, `capped@${owner.slug}.test`, 'member');
        const colleague = await addMember(stack, owner, `colleague@${owner.slug}.test`, 'member');
        const rejectionsBefore = await memberRejections();
        await allow(capped, 10);
        assertRefused(await allowanceKnownToChat(capped), /your 10 tokens a day are used up/);
        for (const subject of SUBJECTS.slice(0, 3)) {
          assertRefused((await chat.ask(capped, `What do we know about ${subject}?`)).events, /your 10 tokens a day are used up/);
        }

        const answered = await chat.ask(colleague, 'What do we know about kites?');
        assert.equal(ending(answered.events).type, 'DONE', 'a member without an allowance answers on');
        const { promptTokens, completionTokens } = usageOf(answered.events);
        // The colleague's tokens were written after the refusals: once they are in the ledger, anything of those would be.
        const ledger = await waitFor(tokensByMember, "the colleague's tokens in the ledger", {
          until: (byMember) => byMember.get(colleague.userId) === promptTokens + completionTokens,
          timeoutMs: 20_000,
        });
        assert.equal(ledger.get(capped.userId) ?? 0, 0, 'no tokens for the capped member');
        assert.equal((await memberRejections()) - rejectionsBefore, 4, 'the probe and the three questions, counted by chat');
      });

      test('a larger allowance admits answers until the next reservation would exceed it, and that one is refused', async () => {
        const metered = await addMember(stack, owner, `metered@${owner.slug}.test`, 'member');
        const colleague = await addMember(stack, owner, `reference@${owner.slug}.test`, 'member');
        const reference = usageOf((await chat.ask(colleague, `What do we know about ${SUBJECTS[0]}?`)).events);
        const spent = reference.promptTokens + reference.completionTokens;
        // Room for about three answers like the reference, and never for the probe.
        const allowance = reservation(reference.promptTokens) + 2 * spent + Math.floor(spent / 2);
        assert.ok(probeReservation > allowance, `the probe (${probeReservation}) must not fit the allowance (${allowance})`);
        await allow(metered, allowance);
        assertRefused(await allowanceKnownToChat(metered), new RegExp(`your ${allowance} tokens a day are used up`));

        let used = 0;
        let admitted = 0;
        let refused = false;
        for (const subject of SUBJECTS.slice(1)) {
          const question = `What do we know about ${subject}?`;
          const { events } = await chat.ask(metered, question);
          if (ending(events).type === 'DONE') {
            const usage = usageOf(events);
            assert.ok(used + reservation(usage.promptTokens) <= allowance, `admitted with ${used} used: ${JSON.stringify(usage)}`);
            used += usage.promptTokens + usage.completionTokens;
            admitted++;
            continue;
          }
          assertRefused(events, new RegExp(`your ${allowance} tokens a day are used up`));
          // The refused question's prompt, as a member without an allowance gets it answered.
          const asked = usageOf((await chat.ask(colleague, question)).events);
          assert.ok(used + reservation(asked.promptTokens) > allowance, `refused with ${used} used and ${asked.promptTokens} prompt tokens`);
          refused = true;
          break;
        }
        assert.ok(refused, `never refused; ${used} of ${allowance} used`);
        assert.ok(admitted >= 2, `admitted ${admitted} answers before the refusal`);
        await waitFor(tokensByMember, "the member's tokens in the ledger", {
          until: (byMember) => byMember.get(metered.userId) === used,
          timeoutMs: 20_000,
        });
        const { tenant } = await as<{ tenant: { quota: { memberAllowances: { user: { id: string }; tokensPerDay: number; usedToday: number }[] } } }>(
          stack,
          owner,
          `{ tenant { quota { memberAllowances { user { id } tokensPerDay usedToday } } } }`,
        );
        const own = tenant.quota.memberAllowances.find((a) => a.user.id === metered.userId);
        assert.deepEqual(own, { user: { id: metered.userId }, tokensPerDay: allowance, usedToday: used });
      });

      test(READERS_ASK_AGAIN, () => readersAskAgainAtOnce(stack, chat));
    });
  }
}

/** Each way between chat and a limit store across a slow network: settling an answer's budgets takes several. */
const SLOW_NETWORK_MS = 75;

for (const variant of databaseVariants()) {
  const redis = redisVariants().find((store) => store.name === 'redis')!;
  describe(`concurrent answers on ${variant.name}, limits in redis ${SLOW_NETWORK_MS} ms away`, { skip: variant.skip || redis.skip }, () => {
    let proxy: Awaited<ReturnType<typeof startLatencyProxy>>;
    let stack: TestStack;
    let chat: ReturnType<typeof answers>;
    const redisPrefix = uniqueRedisPrefix();

    before(async () => {
      proxy = await startLatencyProxy(new URL(redis.url!), SLOW_NETWORK_MS);
      stack = await startTestStack(variant, { AUTH_DEV_LOGIN: 'true', CHAT_MODELS: ANSWER_MODELS, CHAT_LOCAL_TOKEN_DELAY_MS: '0', REDIS_URL: proxy.url, REDIS_KEY_PREFIX: redisPrefix });
      chat = answers(stack);
    });
    after(async () => {
      await chat?.close();
      await stack?.close();
      proxy?.close();
      await deleteRedisKeys(redis.url!, redisPrefix);
    });

    test(READERS_ASK_AGAIN, () => readersAskAgainAtOnce(stack, chat));
  });
}

/**
 * A TCP relay to `target` that holds every chunk `oneWayMs` in each direction, in order: a real Redis across a
 * slow network. (The timers are the network's latency, not waits of the test.)
 */
async function startLatencyProxy(target: URL, oneWayMs: number) {
  const sockets = new Set<Socket>();
  const relay = (from: Socket, to: Socket) => {
    let sent = Promise.resolve();
    from.on('data', (chunk) => {
      const due = Date.now() + oneWayMs;
      sent = sent.then(async () => {
        await delay(Math.max(0, due - Date.now()));
        if (!to.destroyed) to.write(chunk);
      });
    });
    from.on('close', () => void sent.then(() => to.destroy()));
    from.on('error', () => to.destroy());
  };
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 6379), target.hostname);
    for (const socket of [client, upstream]) sockets.add(socket);
    relay(client, upstream);
    relay(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // The same URL (credentials, database) but for the address.
  const url = new URL(target);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as AddressInfo).port);
  return {
    url: url.href,
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

/**
 * A tenant allowed as many answers at once as it has readers, each asking again the moment it sees DONE, for
 * several rounds: none is refused, because an answer frees its slot before its last event is written.
 */
async function readersAskAgainAtOnce(stack: TestStack, chat: ReturnType<typeof answers>) {
  const ANSWERERS = 4;
  const ROUNDS = 5;
  // Past the gateway: the per-address sign-up allowance is not what this counts.
  const admin = await signUp(stack, 'slots', { pastGateway: true });
  const members = [admin];
  for (let i = 1; i < ANSWERERS; i++) members.push(await addMember(stack, admin, `reader${i}@${admin.slug}.test`, 'member'));
  const setStreams = (concurrentStreams: number) =>
    as(stack, admin, `mutation($q: SetQuotaInput!) { setQuota(input: $q) { plan } }`, { q: { concurrentStreams } });
  // Chat learns the limit from the bus: none at all first, seen when an answer is refused; then as many as there are readers.
  const endingOf = async (question: string) => ending((await chat.ask(admin, question)).events);
  await setStreams(0);
  await waitFor(() => endingOf('Anyone there?'), 'chat to allow no answers', { until: (last) => last.type === 'ERROR', timeoutMs: 20_000, intervalMs: 50 });
  await setStreams(ANSWERERS);
  await waitFor(() => endingOf('Anyone there now?'), `chat to allow ${ANSWERERS} answers`, { until: (last) => last.type === 'DONE', timeoutMs: 20_000, intervalMs: 50 });

  const endings = await Promise.all(
    members.map(async (member, m) => {
      const seen: AnswerEvent[] = [];
      for (let round = 0; round < ROUNDS; round++) seen.push(ending((await chat.ask(member, `Round ${round} for reader ${m}: what about ${SUBJECTS[round]}?`)).events));
      return seen;
    }),
  );
  assert.deepEqual(endings.flat().filter((last) => last.type !== 'DONE'), []);
}
