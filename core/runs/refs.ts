/**
 * Refs: the locations a caller names — a base, data, a store, an export's output, a delta. Two
 * rules live here, once:
 *
 * - Confinement. Over HTTP a tenant may name only refs inside its own area: `tenants/{t}/inputs/`
 *   and `tenants/{t}/exports/` of the store (exports is also where outputs may go), plus the
 *   operator's LISA_REF_PREFIXES. Prefixes match whole path segments. Refused, with REF_FORBIDDEN:
 *   anything else, `.` or `..` segments, `%` (no layer gets to decode a traversal), backslashes and
 *   control characters, schemes other than s3:// and hf:// (`file:`, `http:`), relative paths, and
 *   local paths whose real path (symlinks resolved, also those of a directory's files) leaves the
 *   allowed prefixes. A local user (the CLI) may name anything: ANY_REF.
 * - Coded failures. A missing, unreadable or wrong-type path becomes REF_NOT_FOUND,
 *   REF_INACCESSIBLE or REF_WRONG_TYPE naming the ref, never a raw Node error.
 *
 * The checks run when a request is made; a path swapped for a symlink between the check and the
 * read is not caught (the area's owner would have to do it).
 */
import { access, constants, lstat, readdir, realpath, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LisaError, type ErrorCode } from '../errors.ts';
import { NotFoundError, AccessDeniedError } from '../store/object-store.ts';

export type RefField = 'base' | 'data' | 'store' | 'out' | 'delta' | 'checkpoint' | 'tokenizer' | 'chatTemplate';

/** What the caller may name: anything, or only refs under these prefixes (reads may also use the write prefixes). */
export type RefPolicy = { confined: false } | { confined: true; read: readonly string[]; write: readonly string[] };

export const ANY_REF: RefPolicy = { confined: false };

/** Where a tenant's runs live in a store: `tenants/{tenant}/`. */
export const tenantPrefix = (tenant: string): string => `tenants/${tenant}/`;

/**
 * A tenant's refs: its `inputs/` to read from, its `exports/` to write to (and read back), under
 * the store the runs live in, plus `extra` prefixes for both (`{tenant}` replaced).
 */
export function tenantRefPolicy(storeUrl: string, tenant: string, extra: readonly string[]): RefPolicy {
  const root = storeUrl.startsWith('file://') ? fileURLToPath(storeUrl) : storeUrl;
  const area = `${root.replace(/\/$/, '')}/${tenantPrefix(tenant)}`;
  const more = extra.map((p) => p.replaceAll('{tenant}', tenant));
  return { confined: true, read: [`${area}inputs/`, ...more], write: [`${area}exports/`, ...more] };
}

export class RefError extends LisaError {
  constructor(code: Extract<ErrorCode, `REF_${string}`>, field: RefField, ref: string, why: string, options?: { cause?: unknown }) {
    super(code, `${field} ${ref}: ${why}`, { field, ref }, options);
  }
}

const isUrl = (ref: string): boolean => /^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(ref);
const isLocal = (ref: string): boolean => !isUrl(ref);

/** `ref` equals `prefix` or lies below it, comparing whole segments. */
function within(ref: string, prefix: string): boolean {
  const p = prefix.endsWith('/') ? prefix : `${prefix}/`;
  return ref === p.slice(0, -1) || ref.startsWith(p);
}

/**
 * Refuses a ref the policy does not allow (REF_FORBIDDEN). `access` is what the operation does
 * with it: outputs must be under a write prefix.
 */
export async function checkRefAllowed(policy: RefPolicy, field: RefField, ref: string, mode: 'read' | 'write'): Promise<void> {
  if (!policy.confined) return;
  const allowed = mode === 'write' ? policy.write : [...new Set([...policy.read, ...policy.write])];
  const refuse = (why: string): never => {
    throw new RefError('REF_FORBIDDEN', field, ref, `${why}; allowed: ${allowed.join(', ')}`);
  };
  // eslint-disable-next-line no-control-regex
  if (/[%\\\x00-\x1f\x7f]/.test(ref)) refuse('percent-encoding, backslashes and control characters are not accepted in refs');
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(ref)?.[1];
  if (isUrl(ref) && scheme !== 's3' && scheme !== 'hf') refuse('only absolute paths, s3:// and hf:// refs are accepted');
  if (isLocal(ref) && !isAbsolute(ref)) refuse('a relative path is not accepted over HTTP; name it absolutely');
  const path = scheme ? ref.slice(scheme.length + 3) : ref.slice(1);
  const segments = path.replace(/\/$/, '').split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) refuse("empty, '.' and '..' path segments are not accepted");
  if (!allowed.some((p) => within(ref, p))) refuse("it is outside this tenant's area");
  if (isLocal(ref)) {
    const roots = await Promise.all(allowed.filter(isLocal).map(realPathOf));
    const inside = (real: string) => roots.some((r) => within(real, r));
    if (!inside(await realPathOf(ref))) refuse('it resolves (through a symlink) outside the allowed locations');
    // a base directory's files are read by name: none may lead out either
    const entries = await readdir(ref).catch(() => [] as string[]);
    for (const name of entries) {
      if (!inside(await realPathOf(join(ref, name)))) refuse(`${name} in it resolves (through a symlink) outside the allowed locations`);
    }
  }
}

/** The real path of `path`, or of its deepest existing ancestor with the rest appended. */
async function realPathOf(path: string): Promise<string> {
  const missing: string[] = [];
  for (let p = resolve(path); ; p = dirname(p)) {
    try {
      return join(await realpath(p), ...missing.reverse());
    } catch {
      if (p === dirname(p)) return resolve(path);
      missing.push(p.slice(dirname(p).length).replace(/^\//, ''));
    }
  }
}

const ERRNO: Record<string, [Extract<ErrorCode, `REF_${string}`>, string]> = {
  ENOENT: ['REF_NOT_FOUND', 'no such file or directory'],
  ENOTDIR: ['REF_WRONG_TYPE', 'a path component is a file, not a directory'],
  EISDIR: ['REF_WRONG_TYPE', 'is a directory; expected a file'],
  EACCES: ['REF_INACCESSIBLE', 'permission denied'],
  EPERM: ['REF_INACCESSIBLE', 'operation not permitted'],
  ELOOP: ['REF_INACCESSIBLE', 'too many levels of symbolic links'],
  EIO: ['REF_INACCESSIBLE', 'input/output error'],
  ENXIO: ['REF_INACCESSIBLE', 'not a readable file (a socket or device)'],
  EROFS: ['REF_INACCESSIBLE', 'read-only file system'],
  ENOSPC: ['REF_INACCESSIBLE', 'no space left on device'],
  EDQUOT: ['REF_INACCESSIBLE', 'disk quota exceeded'],
  ENAMETOOLONG: ['REF_INACCESSIBLE', 'file name too long'],
};

/**
 * The coded error for a failure to use a ref: a Node file-system error, or a store's not-found or
 * access-denied for an s3:// ref. Null for anything else.
 */
export function refError(field: RefField, ref: string, err: unknown): LisaError | null {
  if (err instanceof RefError) return err;
  if (err instanceof NotFoundError) return new RefError('REF_NOT_FOUND', field, ref, `${err.details?.key} does not exist`, { cause: err });
  if (err instanceof AccessDeniedError) return new RefError('REF_INACCESSIBLE', field, ref, err.message, { cause: err });
  const errno = (err as NodeJS.ErrnoException)?.code;
  const known = errno === undefined ? undefined : ERRNO[errno];
  if (!known || err instanceof LisaError) return null;
  const path = (err as NodeJS.ErrnoException).path;
  const where = path && resolve(path) !== resolve(ref) ? ` (${path})` : '';
  return new RefError(known[0], field, ref, `${known[1]}${where}`, { cause: err });
}

/** Runs `work`, turning a failure to use one of `refs` into its coded error. */
export async function usingRefs<T>(refs: Partial<Record<RefField, string>>, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const path = (err as NodeJS.ErrnoException)?.path;
    const entries = Object.entries(refs) as Array<[RefField, string]>;
    // the ref a file error is about: the one its path lies in, else the only one
    const [field, ref] = entries.find(([, r]) => path !== undefined && isLocal(r) && within(resolve(path), resolve(r))) ?? (entries.length === 1 ? entries[0] : [undefined, undefined]);
    throw (field && ref !== undefined && refError(field, ref, err)) || err;
  }
}

/**
 * Checks a local ref before use: a base is a directory, data and a delta are files, both
 * readable; a store, where it exists, is a directory; an output (`dir` for a model, `file` for a
 * delta) is absent or of its type, below a writable directory. s3:// and hf:// refs pass: their
 * reads report their own failures.
 */
export async function checkLocalRef(field: RefField, ref: string, expect: 'dir' | 'file', mode: 'read' | 'write'): Promise<void> {
  if (isUrl(ref)) return;
  const fail = (err: unknown): never => {
    throw refError(field, ref, err) ?? err;
  };
  const wrongType = (why: string): never => {
    throw new RefError('REF_WRONG_TYPE', field, ref, why);
  };
  const st = await stat(ref).catch((err: unknown) => ((err as NodeJS.ErrnoException).code === 'ENOENT' && (mode === 'write' || field === 'store') ? null : fail(err)));
  if (st) {
    if (expect === 'dir' && !st.isDirectory()) wrongType('is a file; expected a directory');
    if (expect === 'file' && st.isDirectory()) wrongType('is a directory; expected a file');
    const wanted = mode === 'write' ? constants.W_OK : constants.R_OK;
    await access(ref, expect === 'dir' ? wanted | constants.X_OK : wanted).catch(fail);
    if (expect === 'dir' && mode === 'read') await readdir(ref).catch(fail);
    return;
  }
  if (mode === 'read') return;
  // an output that does not exist yet is created below its deepest existing ancestor
  let parent = dirname(resolve(ref));
  while (!(await lstat(parent).then(() => true, () => false)) && parent !== dirname(parent)) parent = dirname(parent);
  const pst = await stat(parent).catch(fail);
  if (!pst.isDirectory()) wrongType(`${parent} is a file; expected a directory`);
  await access(parent, constants.W_OK | constants.X_OK).catch(fail);
}
