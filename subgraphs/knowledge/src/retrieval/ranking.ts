/** A ranked result: higher scores rank first. */
export interface ScoredId {
  id: string;
  score: number;
}

/** Best first; equal scores in id order, so a ranking never depends on insertion order. */
export function byScoreDescending(a: ScoredId, b: ScoredId): number {
  return b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * The `k` best of `count` candidates, best first, without sorting them all: a bounded min-heap keeps the
 * current best k, so picking 10 of 5,000 costs about 5,000 comparisons rather than a full sort.
 */
export function topK(count: number, scoreOf: (index: number) => number, idOf: (index: number) => string, k: number): ScoredId[] {
  const heap: ScoredId[] = [];
  if (k < 1) return heap;
  for (let index = 0; index < count; index++) {
    const score = scoreOf(index);
    if (heap.length === k && score < heap[0]!.score) continue;
    const entry = { id: idOf(index), score };
    if (heap.length < k) pushUp(heap, entry);
    else if (worse(heap[0]!, entry)) replaceRoot(heap, entry);
  }
  return heap.sort(byScoreDescending);
}

/** Whether `a` is worse than `b`: lower score, or the same score and a later id. */
function worse(a: ScoredId, b: ScoredId): boolean {
  return byScoreDescending(a, b) > 0;
}

function pushUp(heap: ScoredId[], entry: ScoredId): void {
  let i = heap.push(entry) - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!worse(heap[i]!, heap[parent]!)) break;
    [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
    i = parent;
  }
}

function replaceRoot(heap: ScoredId[], entry: ScoredId): void {
  heap[0] = entry;
  let i = 0;
  for (;;) {
    const left = 2 * i + 1;
    const right = left + 1;
    let worst = i;
    if (left < heap.length && worse(heap[left]!, heap[worst]!)) worst = left;
    if (right < heap.length && worse(heap[right]!, heap[worst]!)) worst = right;
    if (worst === i) return;
    [heap[i], heap[worst]] = [heap[worst]!, heap[i]!];
    i = worst;
  }
}
