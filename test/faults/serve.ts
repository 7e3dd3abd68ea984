/**
 * Real `lisa serve` processes for the fault suites (SIGTERM drains, storms, soak): each its own
 * process group on a free loopback port, tenant `alpha` with a fresh token, the bundled
 * stories260K model and a local JSONL file allowed as refs.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { newToken } from '../../functions/auth.ts';
import { REPO, startServe, type LisaProcess } from './processes.ts';

export const MODEL = join(REPO, 'models/stories260K');

export interface Served {
  url: string;
  lisa: LisaProcess;
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; json: Record<string, unknown> }>;
  /** the process's resident set (KiB) and open file descriptors, from /proc */
  usage(): Promise<{ rssKiB: number; fds: number }>;
}

/** A token line and its token for tenant alpha, shared by every server of one store. */
export function alphaToken(): { token: string; line: string } {
  return newToken('alpha');
}

/** `lisa serve` over `store`, allowing refs to the model and to `dataDir`. */
export async function serveLisa(store: string, auth: { token: string; line: string }, dataDir: string, env: NodeJS.ProcessEnv = {}): Promise<Served> {
  const { url, lisa } = await startServe(store, {
    ...process.env,
    LISA_BACKEND: 'wasm',
    LISA_TOKENS: auth.line,
    LISA_REF_PREFIXES: `${MODEL},${dataDir}/`,
    ...env,
  });
  return {
    url,
    lisa,
    async request(method, path, body, headers = {}) {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${auth.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      try {
        return { status: res.status, json: JSON.parse(text) as Record<string, unknown> };
      } catch {
        return { status: res.status, json: { text } };
      }
    },
    async usage() {
      const status = await readFile(`/proc/${lisa.pid}/status`, 'utf8');
      const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
      return { rssKiB, fds: (await readdir(`/proc/${lisa.pid}/fd`)).length };
    },
  };
}
