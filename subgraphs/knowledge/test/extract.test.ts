import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PDFDocument, PDFHexString, StandardFonts, rgb, type PDFFont, type PDFPage } from 'pdf-lib';
import { blocksOf, chunkText } from '../src/ingestion/chunker.ts';
import { DocumentRejectedError, MEDIA_TYPES, extractText, mediaTypeOf, type RejectionCode } from '../src/ingestion/extract.ts';

const utf8 = (text: string) => new TextEncoder().encode(text);
const bytes = (...values: number[]) => new Uint8Array(values);

/** Asserts the extraction is refused as the document's fault, with this code, and returns the refusal. */
async function rejected(extraction: Promise<unknown>, code: RejectionCode): Promise<DocumentRejectedError> {
  let refusal: unknown;
  await assert.rejects(extraction, (error) => ((refusal = error), true));
  assert.ok(refusal instanceof DocumentRejectedError, `expected a DocumentRejectedError, got ${String(refusal)}`);
  assert.equal(refusal.code, code, refusal.message);
  assert.equal(refusal.name, 'DocumentRejectedError');
  return refusal;
}

test('media types: the declared type when supported (aliases and parameters understood), else the file extension', () => {
  assert.deepEqual([...MEDIA_TYPES], ['text/plain', 'text/markdown', 'text/html', 'application/pdf']);
  assert.equal(mediaTypeOf('notes.txt', 'text/markdown'), 'text/markdown');
  assert.equal(mediaTypeOf('page', 'text/HTML; charset=utf-8'), 'text/html');
  assert.equal(mediaTypeOf('page', 'application/xhtml+xml'), 'text/html');
  assert.equal(mediaTypeOf('readme', 'text/x-markdown'), 'text/markdown');
  assert.equal(mediaTypeOf('Q3 Report.PDF', 'application/octet-stream'), 'application/pdf');
  assert.equal(mediaTypeOf('guide.markdown'), 'text/markdown');
  assert.equal(mediaTypeOf('index.htm', ''), 'text/html');
  assert.equal(mediaTypeOf('photo.png', 'image/png'), undefined);
  assert.equal(mediaTypeOf('archive.tar.gz'), undefined);
  assert.equal(mediaTypeOf('constructor'), undefined);
  assert.equal(mediaTypeOf('x.constructor'), undefined);
});

test('an unsupported media type is refused, naming what is supported', async () => {
  const refusal = await rejected(extractText('image/png', bytes(0x89, 0x50, 0x4e, 0x47)), 'UNSUPPORTED_MEDIA_TYPE');
  assert.match(refusal.message, /image\/png/);
  assert.match(refusal.message, /application\/pdf/);
});

test('size: at the limit is read; over it is refused before any parsing', async () => {
  const text = utf8('twelve bytes');
  assert.equal(await extractText('text/plain', text, { maxBytes: 12 }), 'twelve bytes');
  await rejected(extractText('text/plain', utf8('thirteen byte'), { maxBytes: 12 }), 'DOCUMENT_TOO_LARGE');
  // Not a PDF at all, yet refused for its size: the limit is checked first.
  await rejected(extractText('application/pdf', new Uint8Array(64), { maxBytes: 63 }), 'DOCUMENT_TOO_LARGE');
});

test('size: text longer than the limit is refused even when the bytes fit', async () => {
  await rejected(extractText('text/plain', utf8('x'.repeat(101)), { maxTextLength: 100 }), 'DOCUMENT_TOO_LARGE');
  assert.equal((await extractText('text/plain', utf8('x'.repeat(100)), { maxTextLength: 100 })).length, 100);
});

test('an empty or blank document is refused as empty, whatever its type', async () => {
  await rejected(extractText('text/plain', new Uint8Array()), 'EMPTY_DOCUMENT');
  await rejected(extractText('application/pdf', new Uint8Array()), 'EMPTY_DOCUMENT');
  await rejected(extractText('text/markdown', utf8(' \n\t\r\n ')), 'EMPTY_DOCUMENT');
  await rejected(extractText('text/html', utf8('<html><head><style>p{}</style></head><body><script>go()</script> </body></html>')), 'EMPTY_DOCUMENT');
});

test('text: UTF-8 read as is, the byte-order mark dropped, CRLF and lone CR made LF', async () => {
  const content = new Uint8Array([0xef, 0xbb, 0xbf, ...utf8('# Café\r\n\r\nLine one\rLine two — ✓ 😀\n')]);
  assert.equal(await extractText('text/markdown', content), '# Café\n\nLine one\nLine two — ✓ 😀\n');
});

test('text: UTF-16 with a byte-order mark (as Windows tools save it) is read', async () => {
  const body = 'Zürich\r\nOK';
  const utf16 = new Uint8Array(2 + body.length * 2);
  utf16.set([0xff, 0xfe]);
  for (let i = 0; i < body.length; i++) utf16[2 + i * 2] = body.charCodeAt(i);
  assert.equal(await extractText('text/plain', utf16), 'Zürich\nOK');
});

test('text: invalid UTF-8 is refused rather than read with replacement characters', async () => {
  const invalid = [
    bytes(0x61, 0xc3, 0x28, 0x62), // a lead byte without its continuation
    bytes(0xc0, 0xaf), // an overlong encoding of "/"
    bytes(0xed, 0xa0, 0x80), // an encoded surrogate
    bytes(0x61, 0xe2, 0x82), // cut off mid-character
    bytes(0xe9, 0x74, 0xe9), // "été" in Latin-1
  ];
  for (const content of invalid) {
    const refusal = await rejected(extractText('text/plain', content), 'INVALID_ENCODING');
    assert.match(refusal.message, /UTF-8/);
  }
});

test('text: NUL characters mean a binary file, refused', async () => {
  const refusal = await rejected(extractText('text/plain', utf8('PK\u0003\u0004\u0000\u0000data')), 'INVALID_ENCODING');
  assert.match(refusal.message, /binary/);
  await rejected(extractText('text/html', utf8('<p>a\u0000b</p>')), 'INVALID_ENCODING');
});

const HANDBOOK_HTML = `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Leave policy | Acme intranet</title>
  <style>body { font-family: sans-serif }</style>
  <script>window.analytics = { track() {} };</script>
</head>
<body>
  <nav><a href="/">Home</a> <a href="/hr">HR</a></nav>
  <!-- generated by the wiki -->
  <h1>Leave policy</h1>
  <p>Everyone gets <strong>25 days</strong> of <a href="https://hr.example/leave?ref=nav">paid leave</a>;
     see rule_4 [1].</p>
  <ul>
    <li>Ask your lead
      <ul><li>two weeks ahead</li><li>in writing</li></ul>
    </li>
    <li>Record it in the HR tool</li>
  </ul>
  <h2>Carry-over</h2>
  <p>Unused days carry over until March.</p>
  <table>
    <tr><th>Grade</th><th>Days</th></tr>
    <tr><td>Junior</td><td>25</td></tr>
  </table>
  <h2>Tools</h2>
  <pre><code class="language-sh">hr-cli leave --days 3
# prints the balance
hr-cli balance</code></pre>
  <p># of days is counted in working days.</p>
  <img src="/img/calendar.png" alt="Leave calendar">
  <div hidden>internal note</div>
  <noscript>Enable JavaScript</noscript>
  <footer>© 2024 Acme · Privacy</footer>
  <script>window.analytics.track('view');</script>
</body>
</html>`;

test('html: markdown with atx headings, nested "-" lists, fenced code and one-line table rows; noise dropped', async () => {
  const markdown = await extractText('text/html', utf8(HANDBOOK_HTML));
  assert.equal(
    markdown,
    [
      '# Leave policy',
      '',
      'Everyone gets **25 days** of paid leave; see rule_4 [1].',
      '',
      '-   Ask your lead',
      '    -   two weeks ahead',
      '    -   in writing',
      '-   Record it in the HR tool',
      '',
      '## Carry-over',
      '',
      'Unused days carry over until March.',
      '',
      '| Grade | Days |',
      '| Junior | 25 |',
      '',
      '## Tools',
      '',
      '```sh',
      'hr-cli leave --days 3',
      '# prints the balance',
      'hr-cli balance',
      '```',
      '',
      '\\# of days is counted in working days.',
      '',
      'Leave calendar',
    ].join('\n'),
  );
  for (const noise of ['analytics', 'font-family', 'Home', 'internal note', 'Enable JavaScript', 'Privacy', 'generated by', 'intranet', 'https://']) {
    assert.ok(!markdown.includes(noise), `${noise} should be gone`);
  }
});

test('html: the chunker reads the converted headings as sections, and the code and list as blocks', async () => {
  const markdown = await extractText('text/html', utf8(HANDBOOK_HTML));
  const blocks = blocksOf(markdown);
  assert.deepEqual(
    blocks.map((block) => [block.kind, block.sectionPath.join(' > ')]),
    [
      ['heading', 'Leave policy'],
      ['paragraph', 'Leave policy'],
      ['list', 'Leave policy'],
      ['heading', 'Leave policy > Carry-over'],
      ['paragraph', 'Leave policy > Carry-over'],
      ['paragraph', 'Leave policy > Carry-over'],
      ['heading', 'Leave policy > Tools'],
      ['code', 'Leave policy > Tools'],
      ['paragraph', 'Leave policy > Tools'],
      ['paragraph', 'Leave policy > Tools'],
    ],
  );
  const chunks = chunkText(markdown, { maxTokens: 40, overlapTokens: 0 });
  const sectionOf = (words: string) => chunks.find((chunk) => chunk.text.includes(words))?.sectionPath;
  assert.deepEqual(sectionOf('two weeks ahead'), ['Leave policy']);
  assert.deepEqual(sectionOf('until March'), ['Leave policy', 'Carry-over']);
  assert.deepEqual(sectionOf('hr-cli balance'), ['Leave policy', 'Tools']);
});

test('html: the <title> leads as the heading only when the page has no h1', async () => {
  const withoutH1 = '<html><head><title>Expense  rules</title></head><body><h2>Receipts</h2><p>Keep them.</p></body></html>';
  const markdown = await extractText('application/xhtml+xml', utf8(withoutH1));
  assert.equal(markdown, '# Expense rules\n\n## Receipts\n\nKeep them.');
  assert.deepEqual(chunkText(markdown).map((chunk) => chunk.sectionPath), [['Expense rules', 'Receipts']]);

  const withH1 = '<html><head><title>Expenses - Wiki</title></head><body><h1>Expenses</h1><p>Keep receipts.</p></body></html>';
  assert.equal(await extractText('text/html', utf8(withH1)), '# Expenses\n\nKeep receipts.');
});

test('html: text that looks like markdown structure stays text for the chunker', async () => {
  const markdown = await extractText('text/html', utf8('<p>- not a bullet</p><p>2. not a step</p><p>## not a heading</p><p>``` not a fence</p>'));
  assert.equal(markdown, '\\- not a bullet\n\n2\\. not a step\n\n\\## not a heading\n\n\\``` not a fence');
  assert.deepEqual(new Set(blocksOf(markdown).map((block) => block.kind)), new Set(['paragraph']));
});

interface PdfText {
  text: string;
  y: number;
  size?: number;
  bold?: boolean;
}

/** A PDF with one page per entry, each line drawn where it says (A4, baselines in points from the bottom). */
async function makePdf(pages: PdfText[][], decorate?: (page: PDFPage) => void): Promise<Uint8Array> {
  const doc = await PDFDocument.create();
  const regular = await doc.embedFont(StandardFonts.Helvetica);
  const bold = await doc.embedFont(StandardFonts.HelveticaBold);
  for (const lines of pages) {
    const page = doc.addPage([595, 842]);
    decorate?.(page);
    for (const line of lines) draw(page, line, line.bold ? bold : regular);
  }
  return doc.save();
}

function draw(page: PDFPage, { text, y, size = 11 }: PdfText, font: PDFFont) {
  page.drawText(text, { x: 56, y, size, font });
}

const POLICY_PAGES: PdfText[][] = [
  [
    { text: 'Travel Policy', y: 780, size: 24, bold: true },
    { text: 'Employees book all travel through the portal. Approval is re-', y: 740 },
    { text: 'quired for trips abroad and for first-class tickets. Bookings', y: 726 },
    { text: 'are handled by Acme-', y: 712 },
    { text: 'Travel Ltd. on our behalf.', y: 698 },
    { text: 'Trains are preferred to planes for trips under 500 km.', y: 670 },
  ],
  [
    { text: 'Expenses', y: 780, size: 18, bold: true },
    { text: 'Receipts are required for every claim.', y: 750 },
    { text: '• Submit them within 30 days', y: 736 },
  ],
  [],
  [{ text: 'Claims made later need a manager to sign off.', y: 780 }],
];

test('pdf: pages apart, paragraphs by their gaps, headings by their type size, hyphenated words made whole', async () => {
  const text = await extractText('application/pdf', await makePdf(POLICY_PAGES));
  assert.equal(
    text,
    [
      '# Travel Policy',
      '',
      'Employees book all travel through the portal. Approval is required for trips abroad and for first-class tickets. Bookings',
      'are handled by Acme-',
      'Travel Ltd. on our behalf.',
      '',
      'Trains are preferred to planes for trips under 500 km.',
      '',
      '## Expenses',
      '',
      'Receipts are required for every claim.',
      '- Submit them within 30 days',
      '',
      'Claims made later need a manager to sign off.',
    ].join('\n'),
  );
});

test('pdf: the chunker reads the headings found in the PDF as sections', async () => {
  const text = await extractText('application/pdf', await makePdf(POLICY_PAGES));
  const chunks = chunkText(text, { maxTokens: 40, overlapTokens: 0 });
  const sectionOf = (words: string) => chunks.find((chunk) => chunk.text.includes(words))?.sectionPath;
  assert.deepEqual(sectionOf('under 500 km'), ['Travel Policy']);
  assert.deepEqual(sectionOf('within 30 days'), ['Travel Policy', 'Expenses']);
  assert.deepEqual(sectionOf('sign off'), ['Travel Policy', 'Expenses']);
});

test('pdf: a heading wrapped over two lines stays one heading', async () => {
  const pdf = await makePdf([
    [
      { text: 'Guidelines for Remote Work and', y: 780, size: 20, bold: true },
      { text: 'Working Abroad', y: 756, size: 20, bold: true },
      { text: 'Remote work is allowed two days a week, agreed with your lead.', y: 720 },
      { text: 'Working abroad needs approval from HR in advance.', y: 706 },
    ],
  ]);
  assert.equal(
    await extractText('application/pdf', pdf),
    '# Guidelines for Remote Work and Working Abroad\n\nRemote work is allowed two days a week, agreed with your lead.\nWorking abroad needs approval from HR in advance.',
  );
});

test('pdf: the bytes handed in are left intact (pdf.js gets a copy), so they can be read again', async () => {
  const content = Buffer.from(await makePdf(POLICY_PAGES));
  const length = content.byteLength;
  const first = await extractText('application/pdf', content);
  assert.equal(content.byteLength, length);
  assert.equal(content.subarray(0, 5).toString('latin1'), '%PDF-');
  assert.equal(await extractText('application/pdf', content), first);
});

test('pdf: a page with only drawings and no text layer is refused as such (no OCR)', async () => {
  const scanned = await makePdf([[]], (page) => page.drawRectangle({ x: 50, y: 50, width: 400, height: 600, color: rgb(0.4, 0.4, 0.4) }));
  const refusal = await rejected(extractText('application/pdf', scanned), 'NO_TEXT_LAYER');
  assert.match(refusal.message, /no text layer/);
  assert.match(refusal.message, /OCR/);
});

test('pdf: a password-protected PDF is refused as encrypted', async () => {
  const readable = await makePdf([[{ text: 'Salaries 2024', y: 780 }]]);
  assert.equal(await extractText('application/pdf', readable), 'Salaries 2024');

  // pdf-lib cannot encrypt; the same document gets a standard security handler whose user password is not empty.
  const doc = await PDFDocument.load(readable);
  const security = doc.context.obj({ Filter: 'Standard', V: 1, R: 2, Length: 40, P: -44, O: PDFHexString.of('4f'.repeat(32)), U: PDFHexString.of('55'.repeat(32)) });
  const fileId = PDFHexString.of('0123456789abcdef0123456789abcdef');
  doc.context.trailerInfo.Encrypt = doc.context.register(security);
  doc.context.trailerInfo.ID = doc.context.obj([fileId, fileId]);
  const refusal = await rejected(extractText('application/pdf', await doc.save({ useObjectStreams: false })), 'ENCRYPTED_PDF');
  assert.match(refusal.message, /password/);
});

test('pdf: a truncated or fake PDF is refused as unreadable', async () => {
  const pdf = await makePdf(POLICY_PAGES);
  await rejected(extractText('application/pdf', pdf.slice(0, Math.floor(pdf.length / 2))), 'UNREADABLE_PDF');
  await rejected(extractText('application/pdf', pdf.slice(0, 16)), 'UNREADABLE_PDF');
  const refusal = await rejected(extractText('application/pdf', utf8('Quarterly report, saved as text by mistake.')), 'UNREADABLE_PDF');
  assert.match(refusal.message, /not a readable PDF/);
});
