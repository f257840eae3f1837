// Runs jq for expressions.ts, away from the service's event loop. Plain JavaScript so that it loads without tsx:
// on Node 20 a worker given a .ts file fails even with `--import tsx` in its execArgv.
//
// jq-wasm's own raw()/json() are not usable here: they feed stdin and collect stdout a byte at a time into a fresh
// array (quadratic: 100 KB of input takes ~0.7 s, 4 MB would take many minutes), never restore the wasm stack
// after jq exits (an instance corrupts itself after ~300 runs: wrong errors, traps, hangs), drop jq's error when
// some output came before it, and set process.exitCode to jq's status. So this loads jq-wasm's Emscripten build
// with its FS and stackAlloc exported and runs jq's main itself: the input in an in-memory file, stdout and
// stderr collected in chunks, the stack put back after each run.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { compileFunction } from 'node:vm';
import { parentPort } from 'node:worker_threads';

const require = createRequire(import.meta.url);
const BUILD = require.resolve('jq-wasm/dist/build/jq.js');
const HOOK = 'Module["callMain"] = callMain;';
const source = readFileSync(BUILD, 'utf8');
if (source.split(HOOK).length !== 2) throw new Error(`jq-wasm's build changed: ${BUILD} no longer has one ${HOOK}`);
const build = { exports: {} };
compileFunction(source.replace(HOOK, `${HOOK} Module["FS"] = FS; Module["stackAlloc"] = stackAlloc;`), ['exports', 'require', 'module', '__filename', '__dirname'], {
  filename: BUILD,
})(build.exports, require, build, BUILD, dirname(BUILD));
const createJq = build.exports;

const STDERR_KEPT = 64 * 1024;

class JqError extends Error {}
class OutputTooLarge extends Error {}

// Emscripten reports aborts (out of memory) on console.error as well as by throwing; the throw is what counts.
console.error = () => {};

async function start() {
  // thisProgram shows in $ENV._; by default it is the host's script path.
  const jq = await createJq({ thisProgram: 'jq' });
  const capture = (fd, write) => {
    const stream = jq.FS.getStream(fd);
    stream.stream_ops = {
      ...stream.stream_ops,
      write(_stream, heap, offset, length) {
        write(new Uint8Array(heap.buffer, heap.byteOffset + offset, length).slice());
        return length;
      },
    };
  };
  const out = { chunks: [], bytes: 0, limit: Infinity };
  const err = { chunks: [], bytes: 0 };
  capture(1, (chunk) => {
    out.bytes += chunk.length;
    // Not an FS error, so it unwinds jq at once; the instance is replaced afterwards.
    if (out.bytes > out.limit) throw new OutputTooLarge();
    out.chunks.push(chunk);
  });
  capture(2, (chunk) => {
    // The tail is kept: jq's error comes last, after anything `debug` wrote.
    err.chunks.push(chunk);
    err.bytes += chunk.length;
    while (err.bytes > STDERR_KEPT && err.chunks.length > 1) err.bytes -= err.chunks.shift().length;
  });
  return { jq, out, err };
}

const text = (sink) => Buffer.concat(sink.chunks).toString('utf8');

/** jq's own words: compile errors (status 3) one per line, a runtime error or halt_error's message otherwise. */
function failure(stderr, status) {
  const lines = stderr.split('\n').filter((line) => !line.startsWith('["DEBUG:",'));
  if (status === 3) {
    const errors = lines.filter((line) => line.startsWith('jq: error: ')).map((line) => line.slice('jq: error: '.length).replace(' (Unix shell quoting issues?)', '').replace(/:$/, ''));
    if (errors.length > 0) return errors.join('; ');
  }
  const at = lines.findIndex((line) => line.startsWith('jq: error'));
  const message = (at < 0 ? lines : lines.slice(at)).join('\n').replace(/^jq: error(?: \(at [^)]*\))?:? ?/, '').trim();
  return message || `jq stopped with status ${status}`;
}

function run({ jq, out, err }, { filter, input, variables, maxOutputBytes }) {
  Object.assign(out, { chunks: [], bytes: 0, limit: maxOutputBytes });
  Object.assign(err, { chunks: [], bytes: 0 });
  jq.FS.writeFile('/input.json', input);
  const args = ['-c', '-M'];
  let program = filter;
  if (variables) {
    // Through a file rather than --argjson: arguments are copied onto jq's 1 MiB stack.
    jq.FS.writeFile('/variables.json', variables.json);
    args.push('--slurpfile', '__variables', '/variables.json');
    program = `$__variables[0] as {${variables.names.map((name) => `$${name}`).join(', ')}} | ${filter}`;
  }
  const stack = jq.stackAlloc(0);
  let status;
  try {
    status = jq.callMain([...args, program, '/input.json']);
  } finally {
    jq.stackAlloc(jq.stackAlloc(0) - stack);
    process.exitCode = 0;
  }
  if (status !== 0) throw new JqError(failure(text(err), status));
  return text(out)
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line));
}

let instance = start();

parentPort.on('message', async (request) => {
  const current = await instance;
  try {
    parentPort.postMessage({ id: request.id, outputs: run(current, request) });
  } catch (error) {
    if (error instanceof JqError) return parentPort.postMessage({ id: request.id, error: error.message });
    // A trap, an abort or a thrown write leaves the instance in pieces.
    instance = start();
    const stderr = text(current.err);
    const message =
      error instanceof OutputTooLarge
        ? `the output is larger than ${request.maxOutputBytes} bytes`
        : stderr.includes('jq: error')
          ? failure(stderr, 1) // "cannot allocate memory" when the wasm heap (256 MiB) is full
          : `jq failed: ${error?.message ?? error}`;
    parentPort.postMessage({ id: request.id, error: message });
  }
});

instance.then(() => parentPort.postMessage({ ready: true }));
