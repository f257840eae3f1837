/**
 * Knowledge bases end to end through the gateway: documents added over GraphQL are ingested by the worker
 * (outbox → bus → extraction, chunking, embedding, both indexes) and become searchable in every mode; a bad
 * document fails with its reason while the others complete; deleting removes passages from every store; and
 * access rules — the knowledge base's member access, grants to members and groups, per-document readers,
 * tenants — decide what each caller sees in search and in every other field.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { databaseVariants, waitFor } from '@jarvis/platform/testing';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import { addMember, as, errorCodes, respond, signIn, signUp, startTestStack, type Member, type TestStack } from './helpers.ts';

const HANDBOOK = `# Travel policy

## Flights

Economy class is booked for every flight under six hours. Business class needs a director's approval.

## Hotels

- Hotels are booked through the travel desk.
- The nightly limit is 180 euros in most cities.
`;

const ONBOARDING = `# Onboarding

New colleagues receive a laptop on their first day. The security training is due within two weeks.
`;

const UPLOAD_LIMIT = 200_000;

/** A one-page PDF with a heading and a paragraph, as a PDF writer lays text out. */
async function pdfReport(): Promise<Uint8Array> {
  const pdf = await PDFDocument.create();
  const page = pdf.addPage();
  const font = await pdf.embedFont(StandardFonts.Helvetica);
  page.drawText('Quarterly safety report', { x: 50, y: 720, size: 20, font });
  page.drawText('Forklift incidents fell by a third after the new training.', { x: 50, y: 680, size: 11, font });
  return pdf.save();
}

/** A GraphQL multipart request (operations, map, then the files), as upload clients send it (with a preflight-forcing header). */
async function upload(stack: TestStack, caller: Member, input: Record<string, unknown>, file: Blob, filename: string, map = { 0: ['variables.input.file'] }) {
  const form = new FormData();
  form.append('operations', JSON.stringify({
    query: `mutation($input: AddDocumentInput!) { addDocument(input: $input) { id title mediaType byteSize status } }`,
    variables: { input: { ...input, file: null } },
  }));
  form.append('map', JSON.stringify(map));
  form.append('0', file, filename);
  const response = await fetch(stack.gatewayUrl, { method: 'POST', headers: { ...caller.headers, 'apollo-require-preflight': 'true' }, body: form });
  return { status: response.status, body: (await response.json()) as { data?: { addDocument: { id: string; title: string; mediaType: string; byteSize: number } }; errors?: { message: string; extensions?: { code?: string } }[] } };
}

interface DocumentState {
  id: string;
  status: 'PENDING' | 'PROCESSING' | 'READY' | 'FAILED';
  failureReason: string | null;
  chunkCount: number;
}

interface PassageResult {
  text: string;
  score: number;
  sectionPath: string[];
  startOffset: number;
  endOffset: number;
  document: { id: string; title: string };
  knowledgeBase: { name: string };
}

const SEARCH = `query($q: String!, $kbs: [ID!], $mode: SearchMode!, $k: Int!, $rerank: Boolean! = false) {
  search(query: $q, knowledgeBaseIds: $kbs, mode: $mode, topK: $k, rerank: $rerank) {
    text score sectionPath startOffset endOffset document { id title } knowledgeBase { name }
  }
}`;

for (const variant of databaseVariants()) {
  describe(`knowledge bases, ingestion and search through the gateway on ${variant.name}`, { skip: variant.skip }, () => {
    let stack: TestStack;
    let owner: Member;

    before(async () => {
      stack = await startTestStack(variant, { AUTH_DEV_LOGIN: 'true', UPLOAD_MAX_BYTES: String(UPLOAD_LIMIT) });
      owner = await signUp(stack, 'knowledge');
    });
    after(() => stack?.close());

    const createKnowledgeBase = async (caller: Member, name: string, memberAccess = 'READ') =>
      (
        await as<{ createKnowledgeBase: { id: string } }>(
          stack,
          caller,
          `mutation($input: CreateKnowledgeBaseInput!) { createKnowledgeBase(input: $input) { id } }`,
          { input: { name, memberAccess } },
        )
      ).createKnowledgeBase.id;

    const addDocument = async (caller: Member, input: Record<string, unknown>) =>
      (
        await as<{ addDocument: DocumentState }>(
          stack,
          caller,
          `mutation($input: AddDocumentInput!) { addDocument(input: $input) { id status failureReason chunkCount } }`,
          { input },
        )
      ).addDocument;

    const settled = (caller: Member, id: string) =>
      waitFor(
        async () =>
          (await as<{ document: DocumentState }>(stack, caller, `query($id: ID!) { document(id: $id) { id status failureReason chunkCount } }`, { id }))
            .document,
        `document ${id} to finish ingesting`,
        { until: (doc) => doc.status === 'READY' || doc.status === 'FAILED', timeoutMs: 30_000, intervalMs: 50 },
      );

    const search = async (caller: Member, q: string, mode = 'HYBRID', kbs?: string[], k = 5, rerank = false) =>
      (await as<{ search: PassageResult[] }>(stack, caller, SEARCH, { q, mode, k, kbs, rerank })).search;

    test('a document added through the gateway becomes READY and searchable in every mode, with citations', async () => {
      const kb = await createKnowledgeBase(owner, 'Handbook');
      const added = await addDocument(owner, { knowledgeBaseId: kb, title: 'Travel policy', content: HANDBOOK });
      assert.equal(added.status, 'PENDING');
      const ready = await settled(owner, added.id);
      assert.equal(ready.status, 'READY', ready.failureReason ?? '');
      assert.ok(ready.chunkCount >= 1);

      for (const [mode, rerank] of [['LEXICAL', false], ['VECTOR', false], ['HYBRID', false], ['HYBRID', true]] as const) {
        const [best] = await search(owner, 'nightly hotel limit', mode, [kb], 5, rerank);
        assert.ok(best, `${mode} found nothing`);
        assert.equal(best.document.title, 'Travel policy');
        assert.equal(best.knowledgeBase.name, 'Handbook');
        assert.match(best.text, /180 euros/, mode);
        assert.equal(HANDBOOK.slice(best.startOffset, best.endOffset), best.text, 'offsets cite the passage exactly');
        assert.deepEqual(best.sectionPath.slice(0, 1), ['Travel policy']);
      }

      const { knowledgeBase } = await as<{ knowledgeBase: { embedder: string; documents: { title: string; status: string }[] } }>(
        stack,
        owner,
        `query($id: ID!) { knowledgeBase(id: $id) { embedder documents { title status } } }`,
        { id: kb },
      );
      assert.match(knowledgeBase.embedder, /^local-hash-v1-\d+$/);
      assert.deepEqual(knowledgeBase.documents, [{ title: 'Travel policy', status: 'READY' }]);
    });

    test('adding the same content again returns the document already there', async () => {
      const kb = await createKnowledgeBase(owner, 'Twice');
      const first = await addDocument(owner, { knowledgeBaseId: kb, title: 'Onboarding', content: ONBOARDING });
      const second = await addDocument(owner, { knowledgeBaseId: kb, title: 'Onboarding again', content: ONBOARDING });
      assert.equal(second.id, first.id);
      assert.equal((await settled(owner, first.id)).status, 'READY');
    });

    test('a bad document ends FAILED with a clear reason while the others complete', async () => {
      const kb = await createKnowledgeBase(owner, 'Mixed');
      const good = await addDocument(owner, { knowledgeBaseId: kb, title: 'Good', content: ONBOARDING });
      const scriptOnly = await addDocument(owner, {
        knowledgeBaseId: kb,
        title: 'Only a script',
        mediaType: 'text/html',
        content: '<html><body><script>alert(1)</script></body></html>',
      });
      const notAPdf = await addDocument(owner, { knowledgeBaseId: kb, title: 'Not a PDF', mediaType: 'application/pdf', content: 'plain words' });

      assert.equal((await settled(owner, good.id)).status, 'READY');
      const empty = await settled(owner, scriptOnly.id);
      assert.equal(empty.status, 'FAILED');
      assert.match(empty.failureReason!, /no text|empty/i);
      const unreadable = await settled(owner, notAPdf.id);
      assert.equal(unreadable.status, 'FAILED');
      assert.match(unreadable.failureReason!, /PDF/);

      const refused = await respond(stack, owner, `mutation($input: AddDocumentInput!) { addDocument(input: $input) { id } }`, {
        input: { knowledgeBaseId: kb, title: 'Spreadsheet', mediaType: 'application/vnd.ms-excel', content: 'a,b' },
      });
      assert.deepEqual(errorCodes(refused), { addDocument: 'BAD_USER_INPUT' });
    });

    test('deleting a document removes its passages from every search mode; re-ingesting restores nothing deleted', async () => {
      const kb = await createKnowledgeBase(owner, 'Disposable');
      const doc = await addDocument(owner, { knowledgeBaseId: kb, title: 'Onboarding', content: ONBOARDING });
      assert.equal((await settled(owner, doc.id)).status, 'READY');
      assert.equal((await search(owner, 'laptop first day', 'VECTOR', [kb]))[0]?.document.id, doc.id);

      await as(stack, owner, `mutation($id: ID!) { deleteDocument(id: $id) }`, { id: doc.id });
      for (const mode of ['LEXICAL', 'VECTOR', 'HYBRID']) assert.deepEqual(await search(owner, 'laptop first day', mode, [kb]), [], mode);
      assert.equal((await as<{ document: null }>(stack, owner, `query($id: ID!) { document(id: $id) { id } }`, { id: doc.id })).document, null);
      const gone = await respond(stack, owner, `mutation($id: ID!) { reingestDocument(id: $id) { id } }`, { id: doc.id });
      assert.deepEqual(errorCodes(gone), { reingestDocument: 'NOT_FOUND' });
    });

    test("stored bytes show in the tenant's usage, and deleting a knowledge base releases them", async () => {
      const keeper = await signUp(stack, 'storage');
      const storedBytes = async () => {
        const { tenant } = await as<{ tenant: { usage: { totals: { metric: string; quantity: number }[] } } }>(
          stack,
          keeper,
          `{ tenant { usage { totals { metric quantity } } } }`,
        );
        return tenant.usage.totals.find((total) => total.metric === 'STORAGE_BYTES')?.quantity ?? 0;
      };
      const kb = await createKnowledgeBase(keeper, 'Archive');
      const doc = await addDocument(keeper, { knowledgeBaseId: kb, title: 'Handbook', content: HANDBOOK });
      assert.equal((await settled(keeper, doc.id)).status, 'READY');
      const bytes = Buffer.byteLength(HANDBOOK);
      await waitFor(storedBytes, 'the bytes counted', { until: (stored) => stored === bytes, timeoutMs: 30_000, intervalMs: 100 });
      await as(stack, keeper, `mutation($id: ID!) { deleteKnowledgeBase(id: $id) }`, { id: kb });
      await waitFor(storedBytes, 'the bytes released', { until: (stored) => stored === 0, timeoutMs: 30_000, intervalMs: 100 });
    });

    test('past the storage quota its admins set, a document is refused with QUOTA_EXCEEDED and nothing is stored', async () => {
      const small = await signUp(stack, 'storage');
      const kb = await createKnowledgeBase(small, 'Small');
      await as(stack, small, `mutation { setQuota(input: { storageBytes: 1000 }) { limits { storageBytes } } }`);
      const addAttempt = (attempt: number) =>
        respond<{ addDocument: { id: string } }>(stack, small, `mutation($input: AddDocumentInput!) { addDocument(input: $input) { id } }`, {
          input: { knowledgeBaseId: kb, title: `Attempt ${attempt}`, content: `Attempt ${attempt}. ${'Stored words. '.repeat(60)}` },
        });
      // The limit reaches the knowledge service as an event: until it has, documents still fit.
      let attempt = 0;
      const refused = await waitFor(() => addAttempt(++attempt), 'the storage limit to apply', { until: (r) => Boolean(r.errors), timeoutMs: 10_000, intervalMs: 20 });
      assert.deepEqual(errorCodes(refused), { addDocument: 'QUOTA_EXCEEDED' });
      assert.match(refused.errors![0]!.message, /storage quota/);
      const { knowledgeBase } = await as<{ knowledgeBase: { documents: { title: string }[] } }>(stack, small, `query($id: ID!) { knowledgeBase(id: $id) { documents { title } } }`, { id: kb });
      assert.ok(knowledgeBase.documents.every((doc) => doc.title !== `Attempt ${attempt}`), 'the refused document was not stored');
      assert.equal((await addDocument(owner, { knowledgeBaseId: await createKnowledgeBase(owner, 'Unlimited'), title: 'Fine', content: ONBOARDING })).status, 'PENDING');
    });

    test('a PDF uploaded through the gateway (GraphQL multipart request) is extracted and searchable', async () => {
      const kb = await createKnowledgeBase(owner, 'Uploads');
      const bytes = await pdfReport();
      const { status, body } = await upload(stack, owner, { knowledgeBaseId: kb }, new Blob([new Uint8Array(bytes)], { type: 'application/octet-stream' }), 'safety-report.pdf');
      assert.equal(status, 200, JSON.stringify(body));
      const added = body.data!.addDocument;
      assert.deepEqual([added.title, added.mediaType, added.byteSize], ['safety-report.pdf', 'application/pdf', bytes.byteLength]);
      assert.equal((await settled(owner, added.id)).status, 'READY');
      const [best] = await search(owner, 'forklift incidents training', 'HYBRID', [kb]);
      assert.equal(best?.document.id, added.id);
      assert.match(best!.text, /Forklift incidents fell by a third/);
      assert.deepEqual(best!.sectionPath, ['Quarterly safety report'], 'the larger type became a heading');
    });

    test('uploads that are malformed, too large or of an unread type are refused before anything is stored', async () => {
      const kb = await createKnowledgeBase(owner, 'Refused uploads');
      const text = (size: number) => new Blob(['word '.repeat(size / 5)], { type: 'text/plain' });
      const elsewhere = await upload(stack, owner, { knowledgeBaseId: kb }, text(100), 'a.txt', { 0: ['variables.input.title.__proto__'] });
      assert.equal(elsewhere.status, 400);
      assert.equal(elsewhere.body.errors?.[0]?.extensions?.code, 'BAD_REQUEST');
      const tooLarge = await upload(stack, owner, { knowledgeBaseId: kb }, text(UPLOAD_LIMIT + 1000), 'big.txt');
      assert.equal(tooLarge.status, 413);
      assert.equal(tooLarge.body.errors?.[0]?.extensions?.code, 'PAYLOAD_TOO_LARGE');
      const spreadsheet = await upload(stack, owner, { knowledgeBaseId: kb }, new Blob(['a,b'], { type: 'application/vnd.ms-excel' }), 'sheet.xls');
      assert.equal(spreadsheet.body.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
      const both = await respond(stack, owner, `mutation($input: AddDocumentInput!) { addDocument(input: $input) { id } }`, {
        input: { knowledgeBaseId: kb, title: 'x', content: 'x', file: { filename: 'x.txt', mediaType: 'text/plain', base64: 'eA==' } },
      });
      assert.deepEqual(errorCodes(both), { addDocument: 'BAD_USER_INPUT' });
      const { knowledgeBase } = await as<{ knowledgeBase: { documents: unknown[] } }>(stack, owner, `query($id: ID!) { knowledgeBase(id: $id) { documents { id } } }`, { id: kb });
      assert.deepEqual(knowledgeBase.documents, []);
    });

    test('a DEDICATED tenant ingests and searches in schemas of its own', async () => {
      const dedicated = await signUp(stack, 'dedicated', { isolation: 'DEDICATED' });
      const kb = await createKnowledgeBase(dedicated, 'Own handbook');
      const doc = await addDocument(dedicated, { knowledgeBaseId: kb, title: 'Travel policy', content: HANDBOOK });
      assert.equal((await settled(dedicated, doc.id)).status, 'READY');
      for (const mode of ['LEXICAL', 'VECTOR', 'HYBRID']) {
        assert.equal((await search(dedicated, 'business class approval', mode))[0]?.document.id, doc.id, mode);
        assert.ok((await search(owner, 'business class approval', mode)).every((p) => p.document.id !== doc.id), mode);
      }
    });

    describe('access', () => {
      let member: Member;
      let privateKb: string;
      let privateDoc: string;

      before(async () => {
        member = await addMember(stack, owner, `member@${owner.slug}.test`, 'member');
        privateKb = await createKnowledgeBase(owner, 'Board minutes', 'NONE');
        privateDoc = (await addDocument(owner, { knowledgeBaseId: privateKb, title: 'Minutes', content: '# Minutes\n\nThe board approved the merger with Zephyr Corp.\n' })).id;
        assert.equal((await settled(owner, privateDoc)).status, 'READY');
      });

      const sees = async (caller: Member) => {
        const { tenant, knowledgeBase, document } = await as<{
          tenant: { knowledgeBases: { id: string }[] };
          knowledgeBase: { id: string } | null;
          document: { id: string } | null;
        }>(stack, caller, `query($kb: ID!, $doc: ID!) { tenant { knowledgeBases { id } } knowledgeBase(id: $kb) { id } document(id: $doc) { id } }`, {
          kb: privateKb,
          doc: privateDoc,
        });
        const passages = await search(caller, 'merger Zephyr', 'HYBRID');
        return {
          listed: tenant.knowledgeBases.some((kb) => kb.id === privateKb),
          byId: knowledgeBase !== null,
          document: document !== null,
          inSearch: passages.some((p) => p.document.id === privateDoc),
        };
      };
      const nothing = { listed: false, byId: false, document: false, inSearch: false };
      const everything = { listed: true, byId: true, document: true, inSearch: true };

      test('a member without access never sees a private knowledge base or its passages, in search or any other field', async () => {
        assert.deepEqual(await sees(member), nothing);
        assert.deepEqual(await sees(owner), everything);
        const named = await respond(stack, member, SEARCH, { q: 'merger', mode: 'LEXICAL', k: 5, kbs: [privateKb] });
        assert.deepEqual(errorCodes(named), { search: 'BAD_USER_INPUT' });
        assert.doesNotMatch(JSON.stringify(named), /Zephyr|Board minutes/);
        const write = await respond(stack, member, `mutation($input: AddDocumentInput!) { addDocument(input: $input) { id } }`, {
          input: { knowledgeBaseId: privateKb, title: 'x', content: 'x' },
        });
        assert.deepEqual(errorCodes(write), { addDocument: 'NOT_FOUND' });
      });

      test('a grant to the member, or to a group it belongs to, opens the knowledge base; revoking closes it', async () => {
        const grant = `mutation($input: KnowledgeBaseGrantInput!) { grantKnowledgeBaseAccess(input: $input) { grants { user { id } groupId level } } }`;
        const revoke = `mutation($input: KnowledgeBaseReaderInput!) { revokeKnowledgeBaseAccess(input: $input) { id } }`;
        const granted = await as<{ grantKnowledgeBaseAccess: { grants: unknown[] } }>(stack, owner, grant, {
          input: { knowledgeBaseId: privateKb, userId: member.userId, level: 'READ' },
        });
        assert.deepEqual(granted.grantKnowledgeBaseAccess.grants, [{ user: { id: member.userId }, groupId: null, level: 'READ' }]);
        assert.deepEqual(await sees(member), everything);
        const readOnly = await respond(stack, member, `mutation($input: AddDocumentInput!) { addDocument(input: $input) { id } }`, {
          input: { knowledgeBaseId: privateKb, title: 'x', content: 'x' },
        });
        assert.deepEqual(errorCodes(readOnly), { addDocument: 'FORBIDDEN' });
        const grantsHidden = await as<{ knowledgeBase: { grants: null; access: string } }>(stack, member, `query($id: ID!) { knowledgeBase(id: $id) { access grants { level } } }`, { id: privateKb });
        assert.deepEqual(grantsHidden.knowledgeBase, { access: 'READ', grants: null });
        await as(stack, owner, revoke, { input: { knowledgeBaseId: privateKb, userId: member.userId } });
        assert.deepEqual(await sees(member), nothing);

        const { createGroup } = await as<{ createGroup: { id: string } }>(stack, owner, `mutation { createGroup(input: { name: "board" }) { id } }`);
        await as(stack, owner, `mutation($g: ID!, $u: ID!) { addGroupMember(groupId: $g, userId: $u) { id } }`, { g: createGroup.id, u: member.userId });
        await as(stack, owner, grant, { input: { knowledgeBaseId: privateKb, groupId: createGroup.id, level: 'WRITE' } });
        const inGroup = await signIn(stack, owner, member.email, member.userId); // groups travel in the token
        assert.deepEqual(await sees(inGroup), everything);
        const written = await addDocument(inGroup, { knowledgeBaseId: privateKb, title: 'Agenda', content: '# Agenda\n\nBudget review.\n' });
        assert.equal(written.status, 'PENDING');
        await as(stack, owner, revoke, { input: { knowledgeBaseId: privateKb, groupId: createGroup.id } });
        assert.deepEqual(await sees(inGroup), nothing);
      });

      test('a document restricted to some readers is hidden from the knowledge base\'s other readers, but not from its managers', async () => {
        const kb = await createKnowledgeBase(owner, 'Shared drive');
        const colleague = await addMember(stack, owner, `colleague@${owner.slug}.test`, 'member');
        const doc = await addDocument(owner, {
          knowledgeBaseId: kb,
          title: 'Salaries',
          content: '# Salaries\n\nThe salary bands for engineers were raised by four percent.\n',
          readers: [{ userId: colleague.userId }],
        });
        await addDocument(owner, { knowledgeBaseId: kb, title: 'Canteen', content: '# Canteen\n\nThe canteen serves salad at noon.\n' });
        assert.equal((await settled(owner, doc.id)).status, 'READY');

        const titles = async (caller: Member) => {
          const { knowledgeBase } = await as<{ knowledgeBase: { documents: { title: string }[] } }>(stack, caller, `query($id: ID!) { knowledgeBase(id: $id) { documents { title } } }`, { id: kb });
          const passages = await search(caller, 'salary bands engineers', 'HYBRID', [kb]);
          return { listed: knowledgeBase.documents.map((d) => d.title).sort(), found: passages.map((p) => p.document.title).includes('Salaries') };
        };
        assert.deepEqual(await titles(member), { listed: ['Canteen'], found: false });
        assert.deepEqual(await titles(colleague), { listed: ['Canteen', 'Salaries'], found: true });
        assert.deepEqual(await titles(owner), { listed: ['Canteen', 'Salaries'], found: true });
        const { document } = await as<{ document: null }>(stack, member, `query($id: ID!) { document(id: $id) { id } }`, { id: doc.id });
        assert.equal(document, null);
      });

      test('another tenant sees nothing of it, by id or in search', async () => {
        const neighbour = await signUp(stack, 'neighbour');
        assert.deepEqual(await sees(neighbour), nothing);
        const named = await respond(stack, neighbour, SEARCH, { q: 'merger', mode: 'HYBRID', k: 5, kbs: [privateKb] });
        assert.deepEqual(errorCodes(named), { search: 'BAD_USER_INPUT' });
        const deleted = await respond(stack, neighbour, `mutation($id: ID!) { deleteKnowledgeBase(id: $id) }`, { id: privateKb });
        assert.deepEqual(errorCodes(deleted), { deleteKnowledgeBase: 'NOT_FOUND' });
        assert.deepEqual(await sees(owner), everything);
      });
    });
  });
}
