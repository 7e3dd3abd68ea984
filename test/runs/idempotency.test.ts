import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsStore } from '../../core/store/fs-store.ts';
import { claimKey, keyHash, requestHash, type ClaimOutcome } from '../../core/runs/idempotency.ts';

describe('idempotency claims in the run store', () => {
  let dir: string;
  let store: FsStore;
  let now: number;
  const clock = (): number => now;
  const reqA = requestHash({ deadlineSeconds: 30 });
  const claimed = (o: ClaimOutcome): Extract<ClaimOutcome, { kind: 'claimed' }> => {
    if (o.kind !== 'claimed') throw new Error(`expected a claim, got ${o.kind}`);
    return o;
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lisa-idem-'));
    store = new FsStore(dir);
    now = Date.parse('2025-01-01T00:00:00Z');
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('claims once, reports busy while held, replays the recorded response after', async () => {
    const first = claimed(await claimKey(store, 'r1', 'key-1', reqA, clock, 100));
    now += 40_000;
    expect(await claimKey(store, 'r1', 'key-1', reqA, clock, 100)).toEqual({ kind: 'busy', retryAfterSeconds: 60 });
    expect(await first.complete({ status: 201, body: { seq: 3 } })).toEqual({ status: 201, body: { seq: 3 } });
    expect(await claimKey(store, 'r1', 'key-1', reqA, clock, 100)).toEqual({ kind: 'replay', response: { status: 201, body: { seq: 3 } } });
    expect(await store.list('runs/r1/idempotency/')).toEqual([
      `runs/r1/idempotency/${keyHash('key-1')}/claim-000000.json`,
      `runs/r1/idempotency/${keyHash('key-1')}/result.json`,
    ]);
    // other keys and other runs are independent
    expect((await claimKey(store, 'r1', 'key-2', reqA, clock, 100)).kind).toBe('claimed');
    expect((await claimKey(store, 'r2', 'key-1', reqA, clock, 100)).kind).toBe('claimed');
  });

  it('rejects the same key with another request body', async () => {
    const first = claimed(await claimKey(store, 'r1', 'k', reqA, clock, 100));
    const reqB = requestHash({ deadlineSeconds: 31 });
    await expect(claimKey(store, 'r1', 'k', reqB, clock, 100)).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    await first.complete({ status: 201, body: {} });
    await expect(claimKey(store, 'r1', 'k', reqB, clock, 100)).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
  });

  it('a released claim lets the next request run', async () => {
    const first = claimed(await claimKey(store, 'r1', 'k', reqA, clock, 100));
    await first.release();
    const second = claimed(await claimKey(store, 'r1', 'k', reqA, clock, 100));
    await second.complete({ status: 201, body: { seq: 0 } });
    expect((await claimKey(store, 'r1', 'k', reqA, clock, 100)).kind).toBe('replay');
  });

  it('exactly one of several racing requests takes over an expired claim', async () => {
    claimed(await claimKey(store, 'r1', 'k', reqA, clock, 10));
    now += 11_000;
    const outcomes = await Promise.all([1, 2, 3, 4].map(() => claimKey(store, 'r1', 'k', reqA, clock, 10)));
    expect(outcomes.filter((o) => o.kind === 'claimed')).toHaveLength(1);
    expect(outcomes.filter((o) => o.kind === 'busy')).toHaveLength(3);
    expect((await store.list('runs/r1/')).map((k) => k.split('/').pop())).toEqual(['claim-000000.json', 'claim-000001.json']);
  });

  it('a late finisher whose claim was taken over returns the result on record', async () => {
    const slow = claimed(await claimKey(store, 'r1', 'k', reqA, clock, 10));
    now += 11_000;
    const fast = claimed(await claimKey(store, 'r1', 'k', reqA, clock, 10));
    await fast.complete({ status: 201, body: { seq: 7 } });
    expect(await slow.complete({ status: 201, body: { seq: 8 } })).toEqual({ status: 201, body: { seq: 7 } });
  });
});
