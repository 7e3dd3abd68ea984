import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FsStore } from './fs-store.ts';
import { BadStoreUrlError, type ObjectStore } from './object-store.ts';
import { createS3Store, type S3StoreOptions, type StoreEnv } from './s3-store.ts';

export type StoreLocation = { kind: 's3'; bucket: string; prefix: string } | { kind: 'dir'; path: string };

// S3 bucket naming rules (the common subset every region accepts)
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * 's3://bucket[/prefix]' (prefix normalized to '' or 'a/b/'), 'file:///abs/dir', or a directory
 * path (relative paths resolve against the working directory).
 */
export function parseStoreUrl(url: string): StoreLocation {
  if (url.trim() === '') throw new BadStoreUrlError(url, 'empty');
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(url)?.[1]?.toLowerCase();
  if (scheme === 's3') {
    const rest = url.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    if (bucket === '') throw new BadStoreUrlError(url, 'no bucket name');
    if (!BUCKET.test(bucket) || bucket.includes('..')) throw new BadStoreUrlError(url, `'${bucket}' is not a valid S3 bucket name (3-63 of a-z 0-9 . -)`);
    const segs = (slash < 0 ? '' : rest.slice(slash + 1)).split('/').filter((s) => s !== '');
    if (segs.some((s) => s === '.' || s === '..')) throw new BadStoreUrlError(url, "prefix has a '.' or '..' segment");
    return { kind: 's3', bucket, prefix: segs.length ? `${segs.join('/')}/` : '' };
  }
  if (scheme === 'file') {
    let path: string;
    try {
      path = fileURLToPath(url);
    } catch (err) {
      throw new BadStoreUrlError(url, `not a local file url (${(err as Error).message})`);
    }
    return { kind: 'dir', path };
  }
  if (scheme !== undefined) throw new BadStoreUrlError(url, `unsupported scheme '${scheme}://'`);
  return { kind: 'dir', path: isAbsolute(url) ? url : resolve(url) };
}

export interface OpenStoreOptions {
  /** environment for the S3 client (endpoint, region, credentials); pass process.env from cli/functions */
  env?: StoreEnv;
  s3?: Omit<S3StoreOptions, 'client' | 'bucket' | 'prefix'>;
}

/** 's3://bucket/prefix' -> S3Store; 'file://...' or a plain path -> FsStore. */
export function openStore(url: string, opts: OpenStoreOptions = {}): ObjectStore {
  const loc = parseStoreUrl(url);
  return loc.kind === 's3' ? createS3Store(loc.bucket, loc.prefix, opts.env ?? {}, opts.s3) : new FsStore(loc.path);
}
