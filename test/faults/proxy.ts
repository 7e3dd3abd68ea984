/**
 * A fault-injecting TCP proxy on loopback, between an S3 client and Ceph RGW. It reads each
 * request's head (method, path, Content-Length), asks `plan` what to do with it, and relays bytes
 * until the fault cuts in: a delay before the request, or a cut of the request or of the response
 * after some bytes, followed by a reset (RST), a clean close (FIN: a truncated response) or a
 * stall (the connection stays open and silent, until the client's socket timeout gives up).
 *
 * It asks RGW for `Connection: close`, so each connection carries exactly one request and byte
 * offsets count from that request's first byte. Every request is recorded, for retry counts.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface ProxiedRequest {
  /** 0, 1, ... in arrival order */
  id: number;
  method: string;
  /** the path and query as sent (path-style: /bucket/key?...) */
  target: string;
  /** the object key, URL-decoded, without the bucket */
  key: string;
  range: string | undefined;
  /** bytes of head plus body */
  bytes: number;
}

export interface Cut {
  afterBytes: number;
  then: 'reset' | 'close' | 'stall';
}

export interface Fault {
  /** wait this long before the request goes upstream */
  delayMs?: number;
  /** cut the request after this many bytes (head included); 'close' is taken as 'reset' */
  request?: Cut;
  /** cut the response after this many bytes (head included) */
  response?: Cut;
  /** told when a cut happens (a kill trial kills the client here) */
  onCut?: (req: ProxiedRequest) => void;
}

export type Plan = (req: ProxiedRequest) => Fault | undefined;

const HEAD_END = Buffer.from('\r\n\r\n');

function parseHead(head: string, id: number): { req: ProxiedRequest; rewritten: string } {
  const [requestLine, ...lines] = head.split('\r\n');
  const [method = '', target = ''] = requestLine.split(' ');
  const headers = new Map(lines.filter(Boolean).map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  const path = decodeURIComponent(target.split('?')[0]);
  const key = path.split('/').slice(2).join('/');
  const length = Number(headers.get('content-length') ?? 0);
  const kept = lines.filter((l) => l && !/^connection\s*:/i.test(l));
  const rewritten = [requestLine, ...kept, 'Connection: close', '', ''].join('\r\n');
  return { req: { id, method, target, key, range: headers.get('range'), bytes: Buffer.byteLength(rewritten) + length }, rewritten };
}

/** One direction of a connection: relays until `cut`, then applies it. */
function relay(from: Socket, to: Socket, cut: Cut | undefined, onCut: () => void, first?: Buffer): { done(): boolean } {
  let sent = 0;
  let cutDone = false;
  const push = (chunk: Buffer): void => {
    if (cutDone) return;
    if (cut && sent + chunk.length >= cut.afterBytes) {
      const part = chunk.subarray(0, Math.max(0, cut.afterBytes - sent));
      sent += part.length;
      cutDone = true;
      const apply = (): void => {
        onCut();
        if (cut.then === 'stall') {
          from.pause();
          return;
        }
        if (cut.then === 'close') to.end();
        else to.resetAndDestroy();
        from.destroy();
      };
      if (part.length > 0) to.write(part, apply);
      else apply();
      return;
    }
    sent += chunk.length;
    to.write(chunk);
  };
  if (first) push(first);
  from.on('data', push);
  from.on('end', () => {
    if (!cutDone) to.end();
  });
  return { done: () => cutDone };
}

export class FaultProxy {
  readonly requests: ProxiedRequest[] = [];
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly upstream: { host: string; port: number },
    private readonly plan: Plan = () => undefined,
  ) {}

  /** Listens on 127.0.0.1; returns the endpoint URL to give the S3 client. */
  async start(): Promise<string> {
    const server = createServer((client) => this.handle(client));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy has no port');
    return `http://127.0.0.1:${address.port}`;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private track(s: Socket): Socket {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => undefined); // a reset is the point
    return s;
  }

  private handle(client: Socket): void {
    this.track(client);
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf(HEAD_END);
      if (end < 0) return;
      client.off('data', onData);
      client.pause();
      const { req, rewritten } = parseHead(buffered.subarray(0, end).toString('latin1'), this.requests.length);
      this.requests.push(req);
      const fault = this.plan(req) ?? {};
      const body = buffered.subarray(end + 4);
      setTimeout(() => this.forward(client, req, fault, Buffer.concat([Buffer.from(rewritten, 'latin1'), body])), fault.delayMs ?? 0);
    };
    client.on('data', onData);
  }

  private forward(client: Socket, req: ProxiedRequest, fault: Fault, first: Buffer): void {
    if (client.destroyed) return;
    const upstream = this.track(connect(this.upstream.port, this.upstream.host));
    const onCut = (): void => fault.onCut?.(req);
    const requestCut = fault.request && { ...fault.request, then: fault.request.then === 'close' ? ('reset' as const) : fault.request.then };
    const up = relay(client, upstream, requestCut, onCut, first);
    const down = relay(upstream, client, fault.response, onCut);
    // a side that goes away takes the other with it, unless a cut already decided how
    client.on('close', () => upstream.destroy());
    upstream.on('close', (hadError) => {
      if (down.done() || up.done()) return;
      if (hadError) client.resetAndDestroy();
      else client.end();
    });
    client.resume();
  }
}
