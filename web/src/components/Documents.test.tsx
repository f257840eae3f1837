/**
 * Documents: each row's status follows documentStatusChanged (PENDING → PROCESSING → READY, or FAILED with its
 * reason), newer news wins over older, and a document the user adds is followed by id until it is READY or
 * FAILED, so it turns READY even when the knowledge base's subscription missed that change.
 */
import { act, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import type { DocumentFieldsFragment, KnowledgeBaseFieldsFragment } from '../gql/graphql';
import { FakeGateway, type FakeSubscription, type GraphQLBody } from '../test/fake-gateway';
import { renderSignedIn } from '../test/render';
import { Documents } from './Documents';

const KNOWLEDGE_BASE: KnowledgeBaseFieldsFragment = {
  id: 'kb-1',
  name: 'Physics notes',
  description: null,
  memberAccess: 'READ',
  access: 'WRITE',
  embedder: null,
  createdAt: '2026-01-05T09:00:00.000Z',
  owner: { id: 'user-1', name: 'Ada' },
};

/** The document `id` at minute `minute` of its life (updatedAt decides which news is newer). */
function documentAt(id: string, title: string, minute: number, change: Partial<DocumentFieldsFragment>): DocumentFieldsFragment {
  return {
    id,
    title,
    mediaType: 'text/markdown',
    byteSize: 2048,
    status: 'PENDING',
    failureReason: null,
    chunkCount: 0,
    createdAt: '2026-01-05T10:00:00.000Z',
    updatedAt: new Date(Date.parse('2026-01-05T10:00:00.000Z') + minute * 60_000).toISOString(),
    knowledgeBase: { id: KNOWLEDGE_BASE.id },
    ...change,
  };
}

const listing = (documents: DocumentFieldsFragment[]): GraphQLBody => ({
  data: { knowledgeBase: { id: KNOWLEDGE_BASE.id, name: KNOWLEDGE_BASE.name, documents } },
});

function setUp(listed: DocumentFieldsFragment[] | Promise<DocumentFieldsFragment[]>) {
  const gateway = new FakeGateway().install();
  gateway.answer('Documents', async () => listing(await listed));
  const onStored = vi.fn();
  renderSignedIn(<Documents knowledgeBase={KNOWLEDGE_BASE} onStored={onStored} />);
  return { gateway, onStored };
}

/** The knowledge base's own subscription (every document), once the console has started it. */
async function knowledgeBaseFeed(gateway: FakeGateway): Promise<FakeSubscription> {
  await waitFor(() => expect(gateway.subscriptionsTo('DocumentStatusChanged')).not.toHaveLength(0));
  const feed = gateway.subscriptionsTo('DocumentStatusChanged')[0]!;
  expect(feed.variables).toEqual({ knowledgeBaseId: KNOWLEDGE_BASE.id });
  return feed;
}

const push = (feed: FakeSubscription, document: DocumentFieldsFragment) => act(() => feed.next({ documentStatusChanged: document }));
const rowOf = (title: string) => screen.getByRole('row', { name: new RegExp(title.replace('.', '\\.')) });

describe('Documents', () => {
  it('moves a document through PENDING, PROCESSING and READY as its status events arrive', async () => {
    const { gateway, onStored } = setUp([documentAt('doc-1', 'optics.md', 0, { status: 'PENDING' })]);
    const feed = await knowledgeBaseFeed(gateway);
    const row = await screen.findByRole('row', { name: /optics\.md/ });
    expect(within(row).getByText('PENDING')).toBeInTheDocument();
    expect(screen.getByText('live')).toBeInTheDocument();

    push(feed, documentAt('doc-1', 'optics.md', 1, { status: 'PROCESSING' }));
    expect(within(rowOf('optics.md')).getByText('PROCESSING')).toBeInTheDocument();
    expect(within(rowOf('optics.md')).queryByText('PENDING')).not.toBeInTheDocument();
    expect(onStored).not.toHaveBeenCalled();

    push(feed, documentAt('doc-1', 'optics.md', 2, { status: 'READY', chunkCount: 12 }));
    const ready = rowOf('optics.md');
    expect(within(ready).getByText('READY')).toBeInTheDocument();
    expect(within(ready).getByRole('cell', { name: '12' })).toBeInTheDocument();
    expect(ready).toHaveAttribute('data-status', 'READY');
    expect(onStored).toHaveBeenCalledTimes(1);
    expect(screen.getAllByRole('row')).toHaveLength(2); // the header and the one document
  });

  it('shows FAILED with its reason, and offers a retry', async () => {
    const { gateway, onStored } = setUp([documentAt('doc-2', 'scan.pdf', 0, { status: 'PROCESSING', mediaType: 'application/pdf' })]);
    const feed = await knowledgeBaseFeed(gateway);
    await screen.findByRole('row', { name: /scan\.pdf/ });
    expect(within(rowOf('scan.pdf')).queryByRole('button', { name: 'retry' })).not.toBeInTheDocument();

    push(feed, documentAt('doc-2', 'scan.pdf', 3, { status: 'FAILED', mediaType: 'application/pdf', failureReason: 'the PDF has no text layer' }));
    const row = rowOf('scan.pdf');
    expect(within(row).getByText('FAILED')).toBeInTheDocument();
    expect(within(row).getByText('the PDF has no text layer')).toBeInTheDocument();
    expect(within(row).getByRole('button', { name: 'retry' })).toBeInTheDocument();
    expect(onStored).toHaveBeenCalledTimes(1);
  });

  it('keeps the newer status when an older event arrives after it', async () => {
    const { gateway } = setUp([documentAt('doc-1', 'optics.md', 0, { status: 'PENDING' })]);
    const feed = await knowledgeBaseFeed(gateway);
    await screen.findByRole('row', { name: /optics\.md/ });

    push(feed, documentAt('doc-1', 'optics.md', 2, { status: 'READY' }));
    push(feed, documentAt('doc-1', 'optics.md', 1, { status: 'PROCESSING' }));
    expect(within(rowOf('optics.md')).getByText('READY')).toBeInTheDocument();
  });

  it('does not let the listing, read before a status change, undo that change', async () => {
    let answerListing!: (documents: DocumentFieldsFragment[]) => void;
    const { gateway } = setUp(new Promise((resolve) => (answerListing = resolve)));
    const feed = await knowledgeBaseFeed(gateway);

    push(feed, documentAt('doc-1', 'optics.md', 2, { status: 'READY' }));
    expect(within(rowOf('optics.md')).getByText('READY')).toBeInTheDocument();
    await act(async () => answerListing([documentAt('doc-1', 'optics.md', 0, { status: 'PENDING' }), documentAt('doc-3', 'waves.md', 0, {})]));

    expect(await screen.findByRole('row', { name: /waves\.md/ })).toBeInTheDocument();
    expect(within(rowOf('optics.md')).getByText('READY')).toBeInTheDocument();
  });

  it('turns a document the user adds READY even when its READY event came before the subscription was live', async () => {
    const { gateway, onStored } = setUp([]);
    await knowledgeBaseFeed(gateway);
    expect(await screen.findByText('No documents yet.')).toBeInTheDocument();

    const added = documentAt('doc-9', 'Lenses', 0, { status: 'PENDING' });
    gateway.answer('AddTextDocument', ({ variables }) => {
      expect(variables).toMatchObject({ knowledgeBaseId: KNOWLEDGE_BASE.id, title: 'Lenses', content: '# Lenses\nConvex and concave.' });
      return { data: { addDocument: added } };
    });
    // The knowledge base's subscription was not live yet when ingestion finished, so it never sends this
    // document's READY; a subscription naming the document starts with the document as it is now.
    const readyNow = { ...added, status: 'READY' as const, chunkCount: 3, updatedAt: documentAt('doc-9', 'Lenses', 1, {}).updatedAt };
    gateway.onSubscribe = (subscription) => {
      const named = subscription.variables.documentIds as string[] | undefined;
      if (named?.includes(added.id)) subscription.next({ documentStatusChanged: readyNow });
    };

    const user = userEvent.setup();
    await user.type(screen.getByPlaceholderText('Title'), 'Lenses');
    await user.type(screen.getByPlaceholderText('…or paste text here'), '# Lenses{Enter}Convex and concave.');
    await user.click(screen.getByRole('button', { name: 'Add text' }));

    await waitFor(() => expect(within(rowOf('Lenses')).getByText('READY')).toBeInTheDocument());
    const followed = gateway.subscriptionsTo('DocumentStatusChanged')[1]!;
    expect(followed.variables).toEqual({ knowledgeBaseId: KNOWLEDGE_BASE.id, documentIds: [added.id] });
    // Once the document is READY the console stops following it.
    expect(followed.stopped).toBe(true);
    expect(onStored).toHaveBeenCalledTimes(1);
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
  });
});
