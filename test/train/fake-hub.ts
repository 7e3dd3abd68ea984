import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

/**
 * The Hugging Face Hub's file endpoints as @huggingface/hub uses them, on 127.0.0.1:
 *   GET|HEAD /{repo}/resolve/{rev}/{path}  small files: 200/206 with ETag and X-Repo-Commit;
 *                                           *.safetensors: 302 to /cdn/{sha256} with X-Linked-Etag/-Size
 *   GET|HEAD /cdn/{sha256}                  the LFS blob, Range -> 206 + Content-Range
 * Errors as the hub sends them: 401 + X-Error-Code RepoNotFound (missing repo, or private without
 * the token), 404 RevisionNotFound, 404 EntryNotFound.
 */
export interface FakeRevision {
  commit: string;
  files: Map<string, Uint8Array>;
}

export interface FakeRepo {
  /** branch or tag -> commit; the commit ids themselves are revisions too */
  refs: Map<string, string>;
  commits: Map<string, FakeRevision>;
  /** the bearer token a private repo requires */
  token?: string;
}

export interface ServedRequest {
  method: string;
  path: string;
  range: string | null;
  status: number;
  /** the repo file this request was about (also for /cdn blobs) */
  file: string | undefined;
  bytes: number;
}

export interface FakeHub {
  url: string;
  repos: Map<string, FakeRepo>;
  requests: ServedRequest[];
  /** body bytes served for a repo file name, over all requests */
  bytesServed(file: string): number;
  /** forgets the requests and byte counts so far */
  resetCounts(): void;
  /** answer the next n requests with this status (transient failures) */
  failNext(n: number, status: number): void;
  /** answer ranged GETs with 200 and the whole body, as a server without range support does */
  ignoreRanges: boolean;
  close(): Promise<void>;
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const fakeCommit = (seed: string): string => createHash('sha1').update(seed).digest('hex');

/** Adds a commit holding `files` and points `branch` at it; returns the commit id. */
export function addCommit(hub: FakeHub, repoName: string, branch: string, files: Map<string, Uint8Array>, token?: string): string {
  let repo = hub.repos.get(repoName);
  if (!repo) {
    repo = { refs: new Map(), commits: new Map(), token };
    hub.repos.set(repoName, repo);
  }
  const commit = fakeCommit(`${repoName}:${repo.commits.size}:${[...files.values()].map(sha256).join()}`);
  repo.commits.set(commit, { commit, files });
  repo.refs.set(branch, commit);
  return commit;
}

export async function dirFiles(dir: string): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  for (const name of (await readdir(dir)).sort()) files.set(name, new Uint8Array(await readFile(join(dir, name))));
  return files;
}

export async function startFakeHub(): Promise<FakeHub> {
  const blobs = new Map<string, { bytes: Uint8Array; file: string }>();
  let failures = { n: 0, status: 0 };
  const served = new Map<string, number>();

  const send = (req: IncomingMessage, res: ServerResponse, log: ServedRequest, bytes: Uint8Array, headers: Record<string, string>) => {
    const range = req.headers.range;
    const m = range && !hub.ignoreRanges ? /^bytes=(\d+)-(\d+)$/.exec(range) : null;
    let body = bytes;
    if (m) {
      const [start, end] = [Number(m[1]), Number(m[2])];
      if (start >= bytes.length || end < start) {
        res.writeHead((log.status = 416), { 'Content-Range': `bytes */${bytes.length}` }).end();
        return;
      }
      body = bytes.subarray(start, Math.min(end + 1, bytes.length));
      res.writeHead((log.status = 206), { ...headers, 'Content-Range': `bytes ${start}-${start + body.length - 1}/${bytes.length}`, 'Content-Length': String(body.length) });
    } else {
      res.writeHead((log.status = 200), { ...headers, 'Content-Length': String(bytes.length) });
    }
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    log.bytes = body.length;
    if (log.file) served.set(log.file, (served.get(log.file) ?? 0) + body.length);
    res.end(body);
  };

  const fail = (res: ServerResponse, log: ServedRequest, status: number, code: string, message: string) => {
    res.writeHead((log.status = status), { 'Content-Type': 'application/json', 'X-Error-Code': code, 'X-Error-Message': message });
    res.end(JSON.stringify({ error: message }));
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const log: ServedRequest = { method: req.method ?? '', path: url.pathname, range: req.headers.range ?? null, status: 0, file: undefined, bytes: 0 };
    hub.requests.push(log);
    if (failures.n > 0) {
      failures.n--;
      res.writeHead((log.status = failures.status)).end();
      return;
    }
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    if (cdn) {
      const blob = blobs.get(cdn[1]);
      if (!blob) return fail(res, log, 404, 'EntryNotFound', 'no such blob');
      log.file = blob.file;
      return send(req, res, log, blob.bytes, { ETag: `"${cdn[1]}"`, 'Accept-Ranges': 'bytes' });
    }
    const m = /^\/(.+?)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (!m) return fail(res, log, 404, 'NotFound', 'not a resolve URL');
    const [, repoName, revEncoded, path] = m;
    const repo = hub.repos.get(repoName);
    if (!repo || (repo.token !== undefined && req.headers.authorization !== `Bearer ${repo.token}`)) {
      return fail(res, log, 401, 'RepoNotFound', `Repository Not Found for url: ${url.href}.`);
    }
    const rev = decodeURIComponent(revEncoded);
    const commit = repo.commits.get(repo.refs.get(rev) ?? rev);
    if (!commit) return fail(res, log, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
    const bytes = commit.files.get(path);
    log.file = path;
    if (!bytes) return fail(res, log, 404, 'EntryNotFound', `${path} does not exist on "${rev}"`);
    if (path.endsWith('.safetensors')) {
      const digest = sha256(bytes);
      blobs.set(digest, { bytes, file: path });
      res.writeHead((log.status = 302), {
        Location: `/cdn/${digest}`,
        'X-Repo-Commit': commit.commit,
        'X-Linked-Etag': `"${digest}"`,
        'X-Linked-Size': String(bytes.length),
      });
      res.end();
      return;
    }
    send(req, res, log, bytes, { ETag: `"${fakeCommit(sha256(bytes))}"`, 'X-Repo-Commit': commit.commit, 'Accept-Ranges': 'bytes' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const hub: FakeHub = {
    url: `http://127.0.0.1:${port}`,
    repos: new Map(),
    requests: [],
    bytesServed: (file) => served.get(file) ?? 0,
    resetCounts() {
      hub.requests.length = 0;
      served.clear();
    },
    failNext(n, status) {
      failures = { n, status };
    },
    ignoreRanges: false,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
  return hub;
}
