import { useEffect, useRef, useState, type ChangeEvent, type FormEvent } from 'react';
import type { Result } from '../api/client';
import { useClient, useErrors, useQuery } from '../api/hooks';
import {
  AddTextDocumentDocument,
  DeleteDocumentDocument,
  DocumentsDocument,
  DocumentStatusChangedDocument,
  ReingestDocumentDocument,
  UploadDocumentDocument,
  type AddTextDocumentMutation,
  type DocumentFieldsFragment,
  type DocumentStatusChangedSubscription,
  type UploadDocumentMutation,
  type KnowledgeBaseFieldsFragment,
} from '../gql/graphql';
import { ErrorList } from './ErrorList';
import { bytes, time } from './format';

const ACCEPT = '.txt,.text,.md,.markdown,.html,.htm,.pdf,text/plain,text/markdown,text/html,application/pdf';

/** Newer news of a document wins: a status event may overtake the answer of the mutation that queued it. */
const isFinal = (doc: DocumentFieldsFragment) => doc.status === 'READY' || doc.status === 'FAILED';

function merge(rows: DocumentFieldsFragment[], incoming: DocumentFieldsFragment): DocumentFieldsFragment[] {
  const index = rows.findIndex((row) => row.id === incoming.id);
  if (index === -1) return [incoming, ...rows];
  if (Date.parse(rows[index]!.updatedAt) > Date.parse(incoming.updatedAt)) return rows;
  return rows.map((row, i) => (i === index ? incoming : row));
}

/** A knowledge base's documents, their status live (documentStatusChanged), uploads, pasted text, deletes. */
export function Documents({ knowledgeBase, onStored }: { knowledgeBase: KnowledgeBaseFieldsFragment; onStored: () => void }) {
  const client = useClient();
  const { data, errors, refetch } = useQuery(DocumentsDocument, { knowledgeBaseId: knowledgeBase.id, first: 100 });
  const [rows, setRows] = useState<DocumentFieldsFragment[]>([]);
  const [live, setLive] = useState(false);
  const [uploading, setUploading] = useState(0);
  const [title, setTitle] = useState('');
  const [content, setContent] = useState('');
  const [mediaType, setMediaType] = useState('text/markdown');
  const failures = useErrors();
  const fileInput = useRef<HTMLInputElement>(null);
  const onStoredRef = useRef(onStored);
  onStoredRef.current = onStored;

  useEffect(() => {
    const listed = data?.knowledgeBase?.documents;
    if (!listed) return;
    // The listing is what exists; a row the subscription has updated since it was read stays as it is now.
    setRows((current) =>
      listed.map((doc) => {
        const seen = current.find((row) => row.id === doc.id);
        return seen && Date.parse(seen.updatedAt) > Date.parse(doc.updatedAt) ? seen : doc;
      }),
    );
  }, [data]);

  const followed = useRef(new Set<() => void>());
  useEffect(() => () => followed.current.forEach((stop) => stop()), []);

  const onChange = ({ data: event, errors: eventErrors }: Result<DocumentStatusChangedSubscription>) => {
    if (eventErrors?.length) failures.setErrors(eventErrors);
    const changed = event?.documentStatusChanged;
    if (!changed) return;
    setRows((current) => merge(current, changed));
    if (isFinal(changed)) onStoredRef.current();
  };

  /**
   * A document just added, followed by name until it is READY or FAILED: its first event is its state when the
   * subscription starts, so a change made before the knowledge base's subscription was live is not missed.
   */
  function follow(document: DocumentFieldsFragment) {
    if (isFinal(document)) return;
    const stop = client.subscribe(
      DocumentStatusChangedDocument,
      { knowledgeBaseId: knowledgeBase.id, documentIds: [document.id] },
      {
        next: (result) => {
          onChange(result);
          if (result.data && isFinal(result.data.documentStatusChanged)) end();
        },
        error: end,
        complete: end,
      },
    );
    function end() {
      stop();
      followed.current.delete(stop);
    }
    followed.current.add(stop);
  }

  // Every document of the knowledge base as its status changes.
  useEffect(() => {
    const stop = client.subscribe(
      DocumentStatusChangedDocument,
      { knowledgeBaseId: knowledgeBase.id },
      {
        next: onChange,
        error: (subscriptionErrors) => {
          setLive(false);
          failures.setErrors(subscriptionErrors);
        },
        complete: () => setLive(false),
      },
    );
    setLive(true);
    return () => {
      stop();
      setLive(false);
    };
  }, [client, knowledgeBase.id]); // eslint-disable-line react-hooks/exhaustive-deps

  async function added(request: Promise<Result<AddTextDocumentMutation | UploadDocumentMutation>>) {
    const result = await request;
    if (result.errors?.length) failures.setErrors(result.errors);
    const document = result.data?.addDocument;
    if (document) {
      setRows((current) => merge(current, document));
      follow(document);
    }
    return document;
  }

  async function upload(event: ChangeEvent<HTMLInputElement>) {
    const files = [...(event.target.files ?? [])];
    failures.clear();
    setUploading((n) => n + files.length);
    await Promise.all(
      files.map(async (file) => {
        try {
          await added(client.upload(UploadDocumentDocument, { knowledgeBaseId: knowledgeBase.id, file, title: file.name }, { file }));
        } catch (error) {
          failures.report(error);
        } finally {
          setUploading((n) => n - 1);
        }
      }),
    );
    if (fileInput.current) fileInput.current.value = '';
  }

  async function addText(event: FormEvent) {
    event.preventDefault();
    failures.clear();
    try {
      const document = await added(
        client.request(AddTextDocumentDocument, { knowledgeBaseId: knowledgeBase.id, title: title.trim() || null, content, mediaType }),
      );
      if (document) {
        setTitle('');
        setContent('');
      }
    } catch (error) {
      failures.report(error);
    }
  }

  async function remove(id: string) {
    const result = await failures.run(() => client.request(DeleteDocumentDocument, { id }));
    if (result?.data?.deleteDocument) {
      setRows((current) => current.filter((row) => row.id !== id));
      onStored();
    }
  }

  async function reingest(id: string) {
    const document = (await failures.run(() => client.request(ReingestDocumentDocument, { id })))?.data?.reingestDocument;
    if (document) setRows((current) => merge(current, document));
  }

  const canWrite = knowledgeBase.access !== 'READ';

  return (
    <div className="documents">
      <h3>
        Documents of {knowledgeBase.name}{' '}
        <span className={live ? 'badge live' : 'badge'} title="documentStatusChanged subscription">
          {live ? 'live' : 'not live'}
        </span>{' '}
        <button type="button" className="link" onClick={() => void refetch()}>
          refresh
        </button>
      </h3>
      <ErrorList errors={errors} />
      <table>
        <thead>
          <tr>
            <th>Title</th>
            <th>Status</th>
            <th>Type</th>
            <th>Size</th>
            <th>Passages</th>
            <th>Added</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {rows.map((doc) => (
            <tr key={doc.id} data-testid="document-row" data-status={doc.status} data-id={doc.id}>
              <td>{doc.title}</td>
              <td>
                <span className={`status status-${doc.status.toLowerCase()}`}>{doc.status}</span>
                {doc.failureReason && <div className="muted">{doc.failureReason}</div>}
              </td>
              <td className="muted">{doc.mediaType}</td>
              <td>{bytes(doc.byteSize)}</td>
              <td>{doc.chunkCount}</td>
              <td className="muted">{time(doc.createdAt)}</td>
              <td>
                {canWrite && doc.status === 'FAILED' && (
                  <button type="button" className="link" onClick={() => void reingest(doc.id)}>
                    retry
                  </button>
                )}
                {canWrite && (
                  <button type="button" className="link danger" onClick={() => void remove(doc.id)}>
                    delete
                  </button>
                )}
              </td>
            </tr>
          ))}
          {data && rows.length === 0 && (
            <tr>
              <td colSpan={7} className="muted">
                No documents yet.
              </td>
            </tr>
          )}
        </tbody>
      </table>
      {canWrite && (
        <>
          <label className="upload">
            Upload a file (text, markdown, HTML or PDF):{' '}
            <input data-testid="upload-input" ref={fileInput} type="file" accept={ACCEPT} multiple onChange={(e) => void upload(e)} />
            {uploading > 0 && <span className="muted"> uploading {uploading}…</span>}
          </label>
          <form className="paste" onSubmit={addText}>
            <div className="row">
              <input placeholder="Title" value={title} onChange={(e) => setTitle(e.target.value)} />
              <select value={mediaType} onChange={(e) => setMediaType(e.target.value)}>
                <option value="text/markdown">markdown</option>
                <option value="text/plain">plain text</option>
                <option value="text/html">HTML</option>
              </select>
              <button type="submit" disabled={!content.trim()}>
                Add text
              </button>
            </div>
            <textarea placeholder="…or paste text here" rows={4} value={content} onChange={(e) => setContent(e.target.value)} />
          </form>
        </>
      )}
      <ErrorList errors={failures.errors} onDismiss={failures.clear} />
    </div>
  );
}
