/**
 * Model repositories on the Hugging Face Hub as files to read: `hf://org/name[@revision]` refs,
 * through @huggingface/hub. Every read is a ranged GET of the file's resolve URL (or of the URL it
 * redirected to), so safetensors stream tensor by tensor like S3 objects do; nothing downloads a
 * whole weight file at once.
 *
 * Per file, the library's fileDownloadInfo makes `GET {endpoint}/{repo}/resolve/{rev}/{path}` with
 * `Range: bytes=0-0` for the size (Content-Range), the ETag (X-Linked-ETag or ETag) and the final
 * URL after redirects (kept when it is on the hub's origin); 404 with `X-Error-Code: EntryNotFound`
 * means no such file. Reads are then `GET <url>` with `Range: bytes=a-b`, made here rather than
 * through the library's WebBlob, which drops the Range header when a slice is the whole file and
 * does not check that the answer is the range asked for. The first answer's X-Repo-Commit pins
 * the revision to that commit for the rest of the repo's files, so a branch moving while a base
 * loads cannot mix two versions.
 *
 * Xet-backed files are read through the resolve URL too: the hub redirects plain ranged GETs of
 * them to its CAS bridge, which serves ranges, one request per read instead of the
 * reconstruction-info round trips the library's XetBlob makes for every slice.
 */
import PQueue from 'p-queue';
import { LisaError, type ErrorCode } from '../errors.ts';
import { ByteSourceError, type ByteSource } from '../tensors/source.ts';

export const HF_SCHEME = 'hf://';
export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';
const MiB = 1024 * 1024;

/** HF_ENDPOINT, HF_TOKEN: the variables huggingface_hub reads; pass process.env from cli/functions. */
export type HubEnv = Readonly<Record<string, string | undefined>>;

export interface HubOptions {
  /** the hub's base URL (HF_ENDPOINT); default https://huggingface.co */
  endpoint?: string;
  /** access token (HF_TOKEN), for private and gated repos */
  token?: string;
  /** bytes per ranged GET; longer reads go as parallel parts. Default 16 MiB */
  partSize?: number;
  /** ranged GETs in flight at once per repo. Default 8 */
  concurrency?: number;
  /** tries per request on 5xx, 429 and network errors, the first included. Default 4 */
  attempts?: number;
  fetch?: typeof fetch;
}

export function hubOptionsFromEnv(env: HubEnv): HubOptions {
  return { endpoint: env.HF_ENDPOINT?.trim() || undefined, token: env.HF_TOKEN?.trim() || undefined };
}

export class HubError extends LisaError {}

/**
 * Codes: HUB_REF_INVALID (not hf://org/name[@rev]), HUB_REPO_NOT_FOUND (no such repo or
 * revision, or no access to it), HUB_ACCESS_DENIED (gated or forbidden), HUB_TOKEN_INVALID,
 * HUB_REQUEST_FAILED (the hub failed, also after retries), HUB_RANGE_IGNORED (a ranged GET was
 * answered with other bytes than asked for). Their kinds (core/errors.ts) tell the caller's ref's
 * faults from the hub's.
 */
function hubError(code: ErrorCode, message: string, details: Record<string, unknown>, cause?: unknown): HubError {
  return new HubError(code, message, details, cause === undefined ? undefined : { cause });
}

export interface HfRef {
  /** as given */
  ref: string;
  /** 'org/name' (or a legacy top-level 'name') */
  repo: string;
  /** branch, tag or commit; 'main' when the ref names none */
  revision: string;
}

export const isHfRef = (ref: string): boolean => ref.startsWith(HF_SCHEME);

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** hf://org/name or hf://org/name@revision; the revision may contain '/' (refs/pr/1). */
export function parseHfRef(ref: string): HfRef {
  const rest = ref.slice(HF_SCHEME.length);
  const at = rest.indexOf('@');
  const repo = (at < 0 ? rest : rest.slice(0, at)).replace(/\/$/, '');
  const revision = at < 0 ? 'main' : rest.slice(at + 1);
  const segs = repo.split('/');
  if (!isHfRef(ref) || segs.length > 2 || !segs.every((s) => NAME.test(s) && !s.includes('..')) || revision === '' || /\s/.test(revision)) {
    throw hubError('HUB_REF_INVALID', `base ref '${ref}': expected hf://org/name or hf://org/name@revision (a branch, tag or commit)`, { ref });
  }
  return { ref, repo, revision };
}

/** What the hub says about one file now. */
export interface HubFileInfo {
  size: number;
  etag: string;
}

/** Traffic of one repo handle: payload bytes of ranged reads, and HTTP requests sent. */
export interface HubStats {
  bytesIn: number;
  requests: number;
}

export interface HubRepo {
  readonly ref: HfRef;
  readonly stats: HubStats;
  /** the commit the revision resolved to, once a response named it */
  readonly commit: string | undefined;
  /** null when the repo has no such file; HUB_REPO_NOT_FOUND when the repo or revision is missing */
  info(path: string): Promise<HubFileInfo | null>;
  /** a file as ranged reads; undefined when the repo has no such file */
  source(path: string): Promise<(ByteSource & { info: HubFileInfo }) | undefined>;
  /** a whole (small) file; undefined when the repo has no such file */
  readFile(path: string): Promise<Uint8Array | undefined>;
}

type Hub = typeof import('@huggingface/hub');
let hubModule: Promise<Hub> | undefined;
// loaded on first use: runs on local or S3 bases never pay for the import
const loadHub = (): Promise<Hub> => (hubModule ??= import('@huggingface/hub'));

const TRANSIENT_STATUS = new Set([429, 500, 502, 503, 504]);

/** Marks a failure worth another try: the hub or the network, not the request. */
class Transient extends Error {}

export function openHubRepo(refText: string, opts: HubOptions = {}): HubRepo {
  const ref = parseHfRef(refText);
  const endpoint = (opts.endpoint ?? DEFAULT_HUB_ENDPOINT).replace(/\/+$/, '');
  const token = opts.token;
  if (token !== undefined && !token.startsWith('hf_')) {
    // @huggingface/hub refuses such a token with a bare TypeError
    throw hubError('HUB_TOKEN_INVALID', `the Hugging Face token (HF_TOKEN) does not start with 'hf_'; set a user access token from https://huggingface.co/settings/tokens`, {});
  }
  const partSize = opts.partSize ?? 16 * MiB;
  const attempts = opts.attempts ?? 4;
  const baseFetch = opts.fetch ?? fetch;
  const queue = new PQueue({ concurrency: opts.concurrency ?? 8 });
  const stats: HubStats = { bytesIn: 0, requests: 0 };
  let commit: string | undefined;
  const name = (path: string) => `${ref.ref}/${path}`;

  const notFound = (path: string, code: string | null): HubError => {
    if (code === 'RevisionNotFound') {
      return hubError('HUB_REPO_NOT_FOUND', `${ref.ref}: repository ${ref.repo} on ${endpoint} has no revision '${ref.revision}'`, { ref: ref.ref, path });
    }
    if (code === 'EntryNotFound') return hubError('HUB_REPO_NOT_FOUND', `${name(path)}: no such file on ${endpoint} (it went away while being read)`, { ref: ref.ref, path });
    const access = token ? 'HF_TOKEN has no access to it' : 'no HF_TOKEN is set';
    return hubError('HUB_REPO_NOT_FOUND', `${ref.ref}: no model repository ${ref.repo} on ${endpoint}, or it is private or gated and ${access}`, { ref: ref.ref, path });
  };

  /**
   * The library's fetch: counts requests, pins the commit, and turns failures into typed errors
   * before the library sees them (it would raise an untyped HubApiError). A missing file is left
   * to the library, which answers null for it.
   */
  const fetchFor = (path: string): typeof fetch => async (input, init) => {
    stats.requests++;
    let res: Response;
    try {
      res = await baseFetch(input, init);
    } catch (err) {
      throw new Transient(`${name(path)}: ${(err as Error).message}`, { cause: err });
    }
    commit ??= res.headers.get('x-repo-commit') ?? undefined;
    const errorCode = res.headers.get('x-error-code');
    // only the library's lookup (it alone asks for the xet file info) may find a file missing
    const lookup = new Headers(init?.headers).get('accept')?.includes('xet-fileinfo') ?? false;
    if (res.status === 404 && errorCode === 'EntryNotFound' && lookup) return res;
    if (!res.ok) {
      await res.body?.cancel();
      if (TRANSIENT_STATUS.has(res.status)) throw new Transient(`${name(path)}: the hub answered ${res.status}`);
      if (res.status === 401 || res.status === 404) throw notFound(path, errorCode);
      if (res.status === 403) {
        throw hubError('HUB_ACCESS_DENIED', `${ref.ref}: access to ${ref.repo} on ${endpoint} is denied (${errorCode ?? 'forbidden'}); a gated repo needs its terms accepted and an HF_TOKEN of that account`, { ref: ref.ref, path });
      }
      throw hubError('HUB_REQUEST_FAILED', `${name(path)}: the hub at ${endpoint} answered ${res.status} ${res.statusText}`, { ref: ref.ref, path, status: res.status });
    }
    const range = new Headers(init?.headers).get('range');
    if (range !== null && res.status !== 206) {
      await res.body?.cancel();
      throw hubError('HUB_RANGE_IGNORED', `${name(path)}: asked ${endpoint} for ${range} and got status ${res.status} instead of 206 Partial Content`, { ref: ref.ref, path });
    }
    return res;
  };

  const retrying = async <T>(what: string, work: () => Promise<T>): Promise<T> => {
    for (let n = 1; ; n++) {
      try {
        return await work();
      } catch (err) {
        if (!(err instanceof Transient)) throw err;
        if (n >= attempts) throw hubError('HUB_REQUEST_FAILED', `${what} failed ${n} times; last: ${err.message}`, { ref: ref.ref }, err);
        await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(4000, 200 * 2 ** (n - 1))));
      }
    }
  };

  const infos = new Map<string, Promise<Awaited<ReturnType<Hub['fileDownloadInfo']>>>>();
  // The repo's first lookup goes alone: its answer names the commit the revision is at, and every
  // later lookup asks for that commit, so the files of one load cannot come from two commits.
  let firstLookup: Promise<unknown> | undefined;
  const lookup = async (path: string, revision: string) =>
    (await loadHub()).fileDownloadInfo({ repo: ref.repo, path, revision, hubUrl: endpoint, accessToken: token, fetch: fetchFor(path) });
  const downloadInfo = (path: string) => {
    let p = infos.get(path);
    if (!p) {
      const what = `looking up ${name(path)}`;
      if (!firstLookup) {
        p = retrying(what, async () => {
          const info = await lookup(path, ref.revision);
          // its URL still names the branch: ask again at the commit for one the branch moving cannot change
          return info && commit !== undefined && commit !== ref.revision ? lookup(path, commit) : info;
        });
        firstLookup = p.catch(() => undefined);
      } else {
        p = firstLookup.then(() => retrying(what, () => lookup(path, commit ?? ref.revision)));
      }
      infos.set(path, p);
      p.catch(() => infos.delete(path));
    }
    return p;
  };

  /** One ranged GET of the file's URL, its body streamed into `into`. */
  const readPart = (path: string, url: string, offset: number, into: Uint8Array) =>
    queue.add(() =>
      retrying(`reading ${into.length} bytes at ${offset} of ${name(path)}`, async () => {
        const res = await fetchFor(path)(url, { headers: { Range: `bytes=${offset}-${offset + into.length - 1}`, ...(token ? { Authorization: `Bearer ${token}` } : {}) } });
        const start = Number(/^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1]);
        let n = 0;
        try {
          if (start !== offset) throw hubError('HUB_RANGE_IGNORED', `${name(path)}: asked for bytes from ${offset}, got Content-Range '${res.headers.get('content-range')}'`, { ref: ref.ref, path });
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            if (n + chunk.length > into.length) throw hubError('HUB_RANGE_IGNORED', `${name(path)}: asked for ${into.length} bytes at offset ${offset}, got more`, { ref: ref.ref, path });
            into.set(chunk, n);
            n += chunk.length;
          }
        } catch (err) {
          await res.body?.cancel().catch(() => undefined);
          if (err instanceof LisaError) throw err;
          throw new Transient(`${name(path)}: ${(err as Error).message}`, { cause: err });
        }
        if (n !== into.length) throw new Transient(`${name(path)}: the body ended after ${n} of ${into.length} bytes`);
        stats.bytesIn += n;
      }),
    );

  const source = async (path: string): Promise<(ByteSource & { info: HubFileInfo }) | undefined> => {
    const info = await downloadInfo(path);
    if (!info) return undefined;
    const size = info.size;
    return {
      name: name(path),
      info: { size, etag: info.etag },
      size: async () => size,
      async read(offset, length) {
        if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0 || offset + length > size) {
          throw new ByteSourceError('SOURCE_OUT_OF_RANGE', `${name(path)}: cannot read ${length} bytes at offset ${offset} of a ${size}-byte file`, { source: name(path), offset, length, size });
        }
        const out = new Uint8Array(length);
        const parts: Promise<void>[] = [];
        for (let at = 0; at < length; at += partSize) parts.push(readPart(path, info.url, offset + at, out.subarray(at, Math.min(at + partSize, length))));
        await Promise.all(parts);
        return out;
      },
    };
  };

  return {
    ref,
    stats,
    get commit() {
      return commit;
    },
    async info(path) {
      const info = await downloadInfo(path);
      return info && { size: info.size, etag: info.etag };
    },
    source,
    async readFile(path) {
      const src = await source(path);
      return src && src.read(0, src.info.size);
    },
  };
}
