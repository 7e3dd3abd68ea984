/**
 * `lisa` commands as real processes, each the leader of its own process group, so a kill takes
 * everything the command started (process.kill(-pid)): a "killed" chunk whose helper process lived
 * on would keep writing to the store.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export const REPO = new URL('../../', import.meta.url).pathname;

export interface LisaProcess {
  child: ChildProcess;
  pid: number;
  stdout: string;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** resolves with the first stdout or stderr line matching `re` (rejects if the process exits first) */
  line(re: RegExp): Promise<string>;
}

/** Runs `node bin/lisa.js ...args` from the repository, detached into a process group of its own. */
export function spawnLisa(args: string[], env: NodeJS.ProcessEnv): LisaProcess {
  const child = spawn(process.execPath, ['bin/lisa.js', ...args], { cwd: REPO, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not start lisa ${args.join(' ')}`);
  const waiting: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  const p: LisaProcess = {
    child,
    pid: child.pid,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))),
    line(re) {
      const seen = `${p.stdout}${p.stderr}`.split('\n').find((l) => re.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        waiting.push({ re, resolve });
        void p.exited.then(({ code, signal }) => reject(new Error(`lisa ${args[0]} exited (${code ?? signal}) before printing ${re}:\n${p.stderr}`)));
      });
    },
  };
  const feed = (which: 'stdout' | 'stderr') => (d: Buffer) => {
    const before = p[which].length;
    p[which] += d.toString();
    const fresh = p[which].slice(p[which].lastIndexOf('\n', before) + 1);
    for (const l of fresh.split('\n')) {
      for (const w of waiting.filter((x) => x.re.test(l))) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(l);
      }
    }
  };
  child.stdout!.on('data', feed('stdout'));
  child.stderr!.on('data', feed('stderr'));
  return p;
}

/** Whether any process of the group is still alive. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGKILL to the whole group, then waits until the leader has exited and no member is left. */
export async function killGroup(p: LisaProcess): Promise<void> {
  try {
    process.kill(-p.pid, 'SIGKILL');
  } catch {
    // already gone
  }
  await p.exited;
  for (let i = 0; groupAlive(p.pid); i++) {
    if (i > 500) throw new Error(`process group ${p.pid} survived SIGKILL`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** `lisa serve --port 0` until it logs ready (killed, and an error, when it has not within `timeoutMs`); its base URL. */
export async function startServe(store: string, env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<{ url: string; lisa: LisaProcess }> {
  const lisa = spawnLisa(['serve', '--store', store, '--port', '0'], env);
  let timer: NodeJS.Timeout | undefined;
  const giveUp = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`lisa serve did not log ready within ${timeoutMs / 1000} s:\n${lisa.stderr}`)), timeoutMs);
  });
  giveUp.catch(() => undefined);
  try {
    const listening = JSON.parse(await Promise.race([lisa.line(/"msg":"listening"/), giveUp])) as { url: string };
    await Promise.race([lisa.line(/"msg":"ready"/), giveUp]);
    return { url: listening.url, lisa };
  } catch (err) {
    await killGroup(lisa);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
