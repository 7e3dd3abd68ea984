import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LisaError } from '../../core/errors.ts';
import { loadBaseDir } from '../../core/models/load.ts';
import { fileSource } from '../../core/tensors/source.ts';
import { openStore } from '../../core/store/open.ts';
import { createRun } from '../../core/train/create-run.ts';
import { ResourceCache } from '../../core/train/resources.ts';
import { createSources, type SourcesOptions } from '../../core/train/sources.ts';
import { addCommit, dirFiles, type FakeHub, startFakeHub } from './fake-hub.ts';
import { bytesOf, fsStore, qaLines, smallLlama, writeBase, writeData } from './harness.ts';

let hub: FakeHub;
let dir1: string;
let dir2: string;
let commit2: string;

const sources = (opts: SourcesOptions = {}) => createSources((url) => openStore(url), { env: { HF_ENDPOINT: hub.url }, ...opts });
const failure = (p: Promise<unknown>) => p.then(() => Promise.reject(new Error('expected a failure')), (e: unknown) => e as LisaError);

beforeAll(async () => {
  hub = await startFakeHub();
  dir1 = await writeBase(smallLlama, 1);
  dir2 = await writeBase(smallLlama, 2);
  addCommit(hub, 'org/tiny', 'v1', await dirFiles(dir1));
  commit2 = addCommit(hub, 'org/tiny', 'main', await dirFiles(dir2));
  addCommit(hub, 'org/private', 'main', await dirFiles(dir1), 'hf_secret');
  addCommit(hub, 'org/empty', 'main', new Map([['README.md', new TextEncoder().encode('# nothing\n')]]));
});

afterAll(async () => {
  await hub?.close();
});

describe('hf:// bases', () => {
  it('load the same base as the local directory, the safetensors by ranged reads only', async () => {
    hub.resetCounts();
    const base = await sources().loadBase('hf://org/tiny');
    const local = await loadBaseDir(dir2);
    expect(base.sha256).toBe(local.sha256);
    expect(base.dir).toBe('hf://org/tiny');
    expect([...base.weights.keys()]).toEqual([...local.weights.keys()]);
    for (const [name, w] of local.weights) expect(bytesOf(base.weights.get(name)!).equals(bytesOf(w)), name).toBe(true);
    expect(base.tokenizer.encode('Once upon a time', { bos: true })).toEqual((await sources().loadBase(dir2)).tokenizer.encode('Once upon a time', { bos: true }));

    // every byte once, and the lookup's one byte
    const size = await fileSource(`${dir2}/model.safetensors`).size();
    expect(hub.bytesServed('model.safetensors')).toBe(size + 1);
    const weightGets = hub.requests.filter((r) => r.file === 'model.safetensors' && r.method === 'GET' && r.status !== 302);
    // the lookup, the first 64 KiB (header), the rest of the first read
    expect(weightGets.map((r) => r.range)).toEqual(['bytes=0-0', 'bytes=0-65535', `bytes=65536-${size - 1}`]);
    for (const r of weightGets) {
      expect(r.range).toMatch(/^bytes=\d+-\d+$/);
      expect(r.status).toBe(206);
    }
    // the branch resolves once; every later file is read at the commit it named
    const resolves = hub.requests.filter((r) => r.path.includes('/resolve/')).map((r) => r.path);
    expect(resolves[0]).toBe('/org/tiny/resolve/main/config.json');
    expect(resolves.slice(1).every((p) => p.startsWith(`/org/tiny/resolve/${commit2}/`))).toBe(true);
    expect(resolves.length).toBeGreaterThan(2);
  });

  it('honour @revision: a branch, and a commit id', async () => {
    expect((await sources().loadBase('hf://org/tiny@v1')).sha256).toBe((await loadBaseDir(dir1)).sha256);
    expect((await sources().loadBase(`hf://org/tiny@${commit2}`)).sha256).toBe((await loadBaseDir(dir2)).sha256);
    expect((await sources().loadBase('hf://org/tiny@main')).sha256).toBe((await loadBaseDir(dir2)).sha256);
  });

  it('send HF_TOKEN: a private repo loads with it and is not found without it', async () => {
    const withToken = createSources((url) => openStore(url), { env: { HF_ENDPOINT: hub.url, HF_TOKEN: 'hf_secret' } });
    expect((await withToken.loadBase('hf://org/private')).sha256).toBe((await loadBaseDir(dir1)).sha256);
    const err = await failure(sources().loadBase('hf://org/private'));
    expect(err.code).toBe('HUB_REPO_NOT_FOUND');
    expect(err.message).toBe(`hf://org/private: no model repository org/private on ${hub.url}, or it is private or gated and no HF_TOKEN is set`);
    const bad = await failure(createSources((url) => openStore(url), { env: { HF_ENDPOINT: hub.url, HF_TOKEN: 'secret' } }).loadBase('hf://org/private'));
    expect(bad.code).toBe('HUB_TOKEN_INVALID');
  });

  it('name the ref when the repo, the revision or a file is missing', async () => {
    const repo = await failure(sources().loadBase('hf://org/nope'));
    expect(repo).toBeInstanceOf(LisaError);
    expect(repo.code).toBe('HUB_REPO_NOT_FOUND');
    expect(repo.message).toBe(`hf://org/nope: no model repository org/nope on ${hub.url}, or it is private or gated and no HF_TOKEN is set`);
    const rev = await failure(sources().loadBase('hf://org/tiny@v9'));
    expect(rev.code).toBe('HUB_REPO_NOT_FOUND');
    expect(rev.message).toBe(`hf://org/tiny@v9: repository org/tiny on ${hub.url} has no revision 'v9'`);
    const file = await failure(sources().loadBase('hf://org/empty'));
    expect(file.code).toBe('MODEL_FILE_MISSING');
    expect(file.message).toBe('hf://org/empty: no config.json; expected a Hugging Face model directory');
    for (const ref of ['hf://org/tiny/extra', 'hf://org/tiny@', 'hf://', 'hf://org/../x']) {
      const e = await failure(sources().loadBase(ref));
      expect(e.code, ref).toBe('HUB_REF_INVALID');
      expect(e.message).toBe(`base ref '${ref}': expected hf://org/name or hf://org/name@revision (a branch, tag or commit)`);
    }
  });

  it('retry the hub on 5xx, and give up with HUB_REQUEST_FAILED', async () => {
    hub.failNext(2, 503);
    expect((await sources().loadBase('hf://org/tiny@v1')).sha256).toBe((await loadBaseDir(dir1)).sha256);
    hub.failNext(3, 502);
    const err = await failure(sources({ hub: { attempts: 3 } }).loadBase('hf://org/tiny@v1'));
    hub.failNext(0, 0);
    expect(err.code).toBe('HUB_REQUEST_FAILED');
    expect(err.message).toBe('looking up hf://org/tiny@v1/config.json failed 3 times; last: hf://org/tiny@v1/config.json: the hub answered 502');
  });

  it('refuse a server that answers ranged reads with the whole file', async () => {
    hub.ignoreRanges = true;
    try {
      const err = await failure(sources().loadBase('hf://org/tiny'));
      expect(err.code).toBe('HUB_RANGE_IGNORED');
      expect(err.message).toBe(`hf://org/tiny/config.json: asked ${hub.url} for bytes=0-0 and got status 200 instead of 206 Partial Content`);
    } finally {
      hub.ignoreRanges = false;
    }
  });

  it('split reads longer than a part into parallel ranged GETs', async () => {
    hub.resetCounts();
    const base = await sources({ hub: { partSize: 4096 } }).loadBase('hf://org/tiny@v1');
    expect(base.sha256).toBe((await loadBaseDir(dir1)).sha256);
    const ranges = hub.requests.filter((r) => r.file === 'model.safetensors' && r.status === 206).map((r) => /^bytes=(\d+)-(\d+)$/.exec(r.range!)!);
    expect(Math.max(...ranges.map((m) => Number(m[2]) - Number(m[1]) + 1))).toBe(4096);
  });

  it('a run can be created on an hf:// base', async () => {
    const run = await createRun({
      store: await fsStore('hf'),
      input: { base: 'hf://org/tiny@v1', data: await writeData(qaLines(8)), fields: ['question', 'answer'], seqLen: 48 },
      sources: sources(),
      cache: new ResourceCache(),
    });
    expect(run.base.sha256).toBe((await loadBaseDir(dir1)).sha256);
    expect(run.config.base).toBe('hf://org/tiny@v1');
  });
});
