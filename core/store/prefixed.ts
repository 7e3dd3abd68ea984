import { checkKey, checkPrefix, type ByteRange, type ObjectSink, type ObjectStore, type StoreStats } from './object-store.ts';

/**
 * A view of `inner` under `prefix` (e.g. `tenants/acme/`): every key is relative to the prefix and
 * nothing outside it can be named, since keys may not contain '..' segments. The HTTP function gives
 * each tenant such a view, so one tenant's run ids never resolve to another's objects.
 *
 * Stats are the view's own: several views share one inner store (one S3 client and its connection
 * pool) while each request meters only its own bytes.
 */
export class PrefixedStore implements ObjectStore {
  readonly url: string;
  readonly stats: StoreStats = { bytesIn: 0, bytesOut: 0, requests: 0 };
  private readonly prefix: string;

  constructor(
    private readonly inner: ObjectStore,
    prefix: string,
  ) {
    this.prefix = prefix.endsWith('/') ? prefix : `${prefix}/`;
    checkKey(inner.url, this.prefix.slice(0, -1));
    this.url = `${inner.url}/${this.prefix.slice(0, -1)}`;
  }

  putStream(key: string): ObjectSink {
    const inner = this.inner.putStream(this.key(key));
    this.stats.requests++;
    return {
      write: async (chunk) => {
        await inner.write(chunk);
        this.stats.bytesOut += chunk.byteLength;
      },
      close: () => inner.close(),
      abort: () => inner.abort(),
    };
  }

  private key(key: string): string {
    checkKey(this.url, key);
    return this.prefix + key;
  }

  async get(key: string, range?: ByteRange): Promise<Uint8Array> {
    const full = this.key(key);
    this.stats.requests++;
    const bytes = await this.inner.get(full, range);
    this.stats.bytesIn += bytes.length;
    return bytes;
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    const full = this.key(key);
    this.stats.requests++;
    await this.inner.put(full, body);
    this.stats.bytesOut += body.length;
  }

  async createExclusive(key: string, body: Uint8Array): Promise<'created' | 'exists'> {
    const full = this.key(key);
    this.stats.requests++;
    const outcome = await this.inner.createExclusive(full, body);
    if (outcome === 'created') this.stats.bytesOut += body.length;
    return outcome;
  }

  head(key: string): ReturnType<ObjectStore['head']> {
    const full = this.key(key);
    this.stats.requests++;
    return this.inner.head(full);
  }

  async list(prefix: string): Promise<string[]> {
    checkPrefix(this.url, prefix);
    this.stats.requests++;
    // stripping a common prefix keeps the inner store's byte order
    return (await this.inner.list(this.prefix + prefix)).map((k) => k.slice(this.prefix.length));
  }

  async sweep(prefix: string, before: Date): Promise<string[]> {
    checkPrefix(this.url, prefix);
    this.stats.requests++;
    return (await this.inner.sweep(this.prefix + prefix, before)).map((k) => k.slice(this.prefix.length));
  }

  delete(key: string): Promise<void> {
    const full = this.key(key);
    this.stats.requests++;
    return this.inner.delete(full);
  }
}
