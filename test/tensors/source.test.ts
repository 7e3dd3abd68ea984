import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bufferSource, fileSink, fileSource } from '../../core/tensors/source.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lisa-source-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('fileSource', () => {
  it('reads exact ranges and reports size', async () => {
    const path = join(dir, 'ten.bin');
    await writeFile(path, Uint8Array.from({ length: 10 }, (_, i) => i * 3));
    const src = fileSource(path);
    expect(src.name).toBe(path);
    expect(await src.size()).toBe(10);
    expect([...(await src.read(3, 4))]).toEqual([9, 12, 15, 18]);
    expect([...(await src.read(10, 0))]).toEqual([]);
  });

  it('rejects a read past the end and a missing file with codes', async () => {
    const path = join(dir, 'four.bin');
    await writeFile(path, new Uint8Array(4));
    await expect(fileSource(path).read(2, 3)).rejects.toMatchObject({
      code: 'SOURCE_OUT_OF_RANGE',
      message: `${path}: read of 3 bytes at offset 2 hit end of file after 2 bytes`,
    });
    await expect(fileSource(path).read(-1, 1)).rejects.toMatchObject({ code: 'SOURCE_RANGE_INVALID' });
    const missing = join(dir, 'missing.bin');
    await expect(fileSource(missing).size()).rejects.toMatchObject({ code: 'SOURCE_NOT_FOUND', message: `${missing}: no such file` });
    await expect(fileSource(missing).read(0, 1)).rejects.toMatchObject({ code: 'SOURCE_NOT_FOUND' });
  });
});

describe('bufferSource', () => {
  it('returns copies, so callers cannot corrupt the source', async () => {
    const bytes = new Uint8Array([1, 2, 3, 4]);
    const src = bufferSource(bytes, 'mem');
    const got = await src.read(1, 2);
    got[0] = 99;
    expect([...bytes]).toEqual([1, 2, 3, 4]);
    expect(await src.size()).toBe(4);
    await expect(src.read(3, 2)).rejects.toMatchObject({
      code: 'SOURCE_OUT_OF_RANGE',
      message: 'mem: read of 2 bytes at offset 3 goes past the end (4 bytes)',
    });
  });
});

describe('fileSink', () => {
  it('writes chunks in order and truncates an existing file', async () => {
    const path = join(dir, 'out.bin');
    await writeFile(path, new Uint8Array(100));
    const sink = fileSink(path);
    await sink.write(new Uint8Array([1, 2]));
    await sink.write(new Uint8Array([3]));
    await sink.close();
    expect([...(await readFile(path))]).toEqual([1, 2, 3]);
  });

  it('reports an unopenable path on write', async () => {
    const sink = fileSink(join(dir, 'no-such-dir', 'x.bin'));
    await expect(sink.write(new Uint8Array(1))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
