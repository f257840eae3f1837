/** Quotas: the plan's limits, lowered by the tenant's admins, per-member allowances, and usage against them. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PLAN_QUOTAS } from '@jarvis/platform';
import { databaseVariants, waitFor } from '@jarvis/platform/testing';
import { answers, usageOf } from './answers.ts';
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

for (const variant of databaseVariants()) {
  describe(`quotas on ${variant.name}`, { skip: variant.skip }, () => {
    let stack: TestStack;
    let owner: Member;
    let member: Member;
    /** Model tokens the member's answer used, and both answers together. */
    let memberTokens: number;
    let tenantTokens: number;

    before(async () => {
      stack = await startTestStack(variant, { AUTH_DEV_LOGIN: 'true' });
      owner = await signUp(stack, 'quota', { plan: 'TEAM' });
      member = await addMember(stack, owner, `member@${owner.slug}.test`, 'member');
      // Token usage comes from chat's own events, as real answers: the member's and the owner's.
      const chat = answers(stack);
      const tokensOf = async (asker: Member, question: string) => {
        const { promptTokens, completionTokens } = usageOf((await chat.ask(asker, question)).events);
        return promptTokens + completionTokens;
      };
      memberTokens = await tokensOf(member, 'What is the travel policy?');
      tenantTokens = memberTokens + (await tokensOf(owner, 'Who approves expenses?'));
      await chat.close();
      await waitFor(async () => (await as<QuotaAnswer>(stack, owner, QUOTA)).tenant.quota.tokensToday, 'both answers in the ledger', {
        until: (tokens) => tokens === tenantTokens,
        timeoutMs: 20_000,
      });
    });
    after(() => stack?.close());

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
  });
}
