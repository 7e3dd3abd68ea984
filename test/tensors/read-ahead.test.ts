import { describe, expect, it } from 'vitest';
import { type ByteSource, bufferSource, prefixCached, readAhead } from '../../core/tensors/source.ts';

/** A source whose reads finish only when the test says so, recording what was asked. */
function heldSource(bytes: Uint8Array, name = 'held') {
  const inner = bufferSource(bytes, name);
  const started: Array<{ offset: number; length: number; release: () => void }> = [];
  const src: ByteSource = {
    name,
    size: () => inner.size(),
    read: (offset, length) =>
      new Promise((resolve, reject) => {
        started.push({ offset, length, release: () => inner.read(offset, length).then(resolve, reject) });
      }),
  };
  return { src, started };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
const bytes = Uint8Array.from({ length: 64 }, (_, i) => i);
const ranges = Array.from({ length: 16 }, (_, i) => ({ offset: 4 * i, length: 4 }));

describe('readAhead', () => {
  it('yields in order; a read that finishes starts the next even while an older one is slow', async () => {
    const { src, started } = heldSource(bytes);
    const reads = readAhead(src, ranges, 3);
    const first = reads.next();
    await tick();
    expect(started.map((s) => s.offset)).toEqual([0, 4, 8]);
    started[1].release();
    await tick();
    expect(started.map((s) => s.offset)).toEqual([0, 4, 8, 12]);
    started[2].release();
    started[3].release();
    await tick();
    expect(started.map((s) => s.offset)).toEqual([0, 4, 8, 12, 16, 20]);
    // 2 x window ranges ahead of the caller at most, however fast the reads are
    for (const s of started.slice(4)) s.release();
    await tick();
    expect(started.length).toBe(6);
    started[0].release();
    expect([...(await first).value!]).toEqual([0, 1, 2, 3]);
    await tick();
    expect(started.length).toBe(6);
    // asking for the next one hands the first back: one more may start
    let pending = reads.next();
    await tick();
    expect(started.length).toBe(7);
    const rest: number[][] = [];
    for (;;) {
      for (const s of started) s.release();
      const r = await pending;
      pending = reads.next();
      if (r.done) break;
      rest.push([...r.value]);
    }
    expect(rest).toEqual(ranges.slice(1).map((r) => [r.offset, r.offset + 1, r.offset + 2, r.offset + 3]));
  });

  it('reads a range from its own source when it names one', async () => {
    const other = bufferSource(Uint8Array.from([7, 8, 9]), 'other');
    const got = [];
    for await (const b of readAhead(bufferSource(bytes), [{ offset: 1, length: 2 }, { offset: 0, length: 3, src: other }, { offset: 5, length: 1 }], 2)) got.push([...b]);
    expect(got).toEqual([[1, 2], [7, 8, 9], [5]]);
  });

  it('starts no more reads once the caller stops', async () => {
    const { src, started } = heldSource(bytes);
    const reads = readAhead(src, ranges, 2);
    const first = reads.next();
    await tick();
    started[0].release();
    await first;
    await reads.return(undefined);
    const before = started.length;
    for (const s of started) s.release();
    await tick();
    expect(started.length).toBe(before);
  });

  it('starts no more reads once the signal is aborted, even while the caller waits', async () => {
    const { src, started } = heldSource(bytes);
    const stop = new AbortController();
    const reads = readAhead(src, ranges, 2, stop.signal);
    const first = reads.next();
    await tick();
    expect(started.length).toBe(2);
    stop.abort();
    for (const s of started) s.release();
    await first;
    await tick();
    expect(started.length).toBe(2);
  });

  it('reports a failed read when its turn comes', async () => {
    const failing: ByteSource = { name: 'f', size: async () => 64, read: async (offset) => (offset === 8 ? Promise.reject(new Error('boom at 8')) : new Uint8Array(4)) };
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const b of readAhead(failing, ranges, 4)) seen.push(b.length);
      })(),
    ).rejects.toThrow('boom at 8');
    expect(seen).toEqual([4, 4]);
  });
});

describe('prefixCached', () => {
  function counted(data: Uint8Array) {
    const inner = bufferSource(data, 'counted');
    const reads: Array<[number, number]> = [];
    const src: ByteSource = { name: 'counted', size: () => inner.size(), read: (o, l) => (reads.push([o, l]), inner.read(o, l)) };
    return { src, reads };
  }
  const data = Uint8Array.from({ length: 100 }, (_, i) => i);

  it('serves reads inside the prefix from one request, and fetches only the rest of a read that runs past it', async () => {
    const { src, reads } = counted(data);
    const cached = prefixCached(src, 16);
    expect([...(await cached.read(0, 8))]).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect([...(await cached.read(8, 8))]).toEqual([8, 9, 10, 11, 12, 13, 14, 15]);
    expect([...(await cached.read(10, 10))]).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    expect([...(await cached.read(50, 2))]).toEqual([50, 51]);
    expect(reads).toEqual([
      [0, 16],
      [16, 4],
      [50, 2],
    ]);
    const copy = await cached.read(0, 2);
    copy[0] = 99;
    expect([...(await cached.read(0, 2))]).toEqual([0, 1]);
  });

  it('fetches a short file whole; a read past its end is refused by the source', async () => {
    const { src, reads } = counted(data.subarray(0, 10));
    const cached = prefixCached(src, 16);
    expect([...(await cached.read(2, 3))]).toEqual([2, 3, 4]);
    await expect(cached.read(8, 4)).rejects.toMatchObject({ code: 'SOURCE_OUT_OF_RANGE' });
    expect(reads[0]).toEqual([0, 10]);
  });

  it('tries the prefix again after a failed fetch', async () => {
    let fail = true;
    const inner = bufferSource(data);
    const src: ByteSource = { name: 'flaky', size: () => inner.size(), read: (o, l) => (fail ? Promise.reject(new Error('flaky')) : inner.read(o, l)) };
    const cached = prefixCached(src, 16);
    await expect(cached.read(0, 4)).rejects.toThrow('flaky');
    fail = false;
    expect([...(await cached.read(0, 4))]).toEqual([0, 1, 2, 3]);
  });
});
