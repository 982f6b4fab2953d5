/**
 * One port, two protocols. The SDK's default handler (`NodeHttp2Handler`) speaks cleartext HTTP/2
 * with prior knowledge, while `NodeHttpHandler` speaks HTTP/1.1, and Node has no cleartext server
 * for both. So a plain TCP server reads each connection's first bytes, puts them back, and hands the
 * socket to an HTTP/2 server (client preface `PRI * HTTP/2.0…`) or to an HTTP/1.1 server.
 *
 * Both are wrapped into one {@link Exchange}, so the endpoint's logic never looks at the protocol.
 * @module
 */
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { Readable, Writable } from "node:stream";

/** One request and its response, whatever the protocol. */
export interface Exchange {
  /** `"1.1"` or `"2.0"`. */
  readonly httpVersion: string;
  readonly method: string;
  /** Path and query, as sent. */
  readonly url: string;
  /** Lowercased names; HTTP/2 pseudo-headers (`:authority`, `:path`…) included. */
  readonly headers: Record<string, string>;
  /** True once the client closed the connection or reset the stream before the response was finished. */
  readonly clientGone: boolean;
  /** Resolves when the client goes away before the response is finished; never resolves otherwise. */
  readonly clientGoneSignal: Promise<void>;
  /** The whole request body; rejects if the client goes away first. */
  readBody(): Promise<Uint8Array>;
  /** Reads and drops the request body, so that the client is never blocked on flow control. */
  discardBody(): void;
  /** Sends a complete response. */
  send(status: number, headers: Record<string, string>, body: Uint8Array | string): Promise<void>;
  /** Sends the status and headers of a streamed response right away. */
  startStream(status: number, headers: Record<string, string>): void;
  /** Writes one piece of a streamed response, waiting out back-pressure; false when the client is gone. */
  write(chunk: Uint8Array): Promise<boolean>;
  /** Finishes a streamed response. */
  end(): Promise<void>;
  /** Breaks off a streamed response, so that the client sees an error rather than a short stream. */
  abort(): void;
}

// What IncomingMessage and Http2ServerRequest, and ServerResponse and Http2ServerResponse, have in
// common and this module uses.
type RequestLike = Readable & { httpVersion: string; method?: string; url?: string; headers: NodeJS.Dict<string | string[]> };
type ResponseLike = Writable & {
  writeHead(status: number, headers?: http.OutgoingHttpHeaders): unknown;
  // Http2ServerResponse has it too, but @types/node does not declare it there.
  flushHeaders?(): void;
};

const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** The TCP listener and the two HTTP servers behind it, with every connection they hold. */
export class DualProtocolListener {
  private readonly tcp: net.Server;
  private readonly http1: http.Server;
  private readonly http2: http2.Http2Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly sessions = new Set<http2.Http2Session>();
  private closing = false;

  constructor(onExchange: (exchange: Exchange) => void) {
    const handle = (req: RequestLike, res: ResponseLike) => onExchange(new HttpExchange(req, res, () => this.closing));
    this.http1 = http.createServer(handle);
    this.http2 = http2.createServer(handle);
    // Session errors (resets, the endpoint's own close) surface on each stream's response.
    this.http2.on("sessionError", () => undefined);
    this.http2.on("session", (session) => {
      this.sessions.add(session);
      session.once("close", () => this.sessions.delete(session));
    });
    this.tcp = net.createServer((socket) => this.accept(socket));
  }

  /** Listens on 127.0.0.1 and resolves with the port. */
  listen(port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.tcp.once("error", reject);
      this.tcp.listen(port, "127.0.0.1", () => {
        this.tcp.off("error", reject);
        resolve((this.tcp.address() as net.AddressInfo).port);
      });
    });
  }

  /** Stops accepting and destroys every session and socket, without waiting for responses to end. */
  async close(): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.tcp.close(() => resolve()));
    // With an error code in the GOAWAY the client fails its open streams; with the default
    // NO_ERROR it would end them as if they were complete.
    // (The error is only there because destroy() ignores the code without one.)
    const reason = new Error("the local Bedrock endpoint is closing");
    for (const session of this.sessions) session.destroy(reason, http2.constants.NGHTTP2_INTERNAL_ERROR);
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    // Stream events are small writes spaced out in time: send each at once.
    socket.setNoDelay(true);
    socket.once("close", () => this.sockets.delete(socket));
    // Resets happen (a client destroying its connection mid-stream); the HTTP servers handle them
    // once attached, and before that there is nothing to report.
    socket.on("error", () => undefined);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const compared = Math.min(head.length, HTTP2_PREFACE.length);
      const couldBeHttp2 = head.subarray(0, compared).equals(HTTP2_PREFACE.subarray(0, compared));
      if (couldBeHttp2 && head.length < HTTP2_PREFACE.length) return;
      socket.off("data", onData);
      socket.pause();
      socket.unshift(head);
      if (couldBeHttp2) {
        // The HTTP/2 session picks up the bytes already buffered on the socket by itself.
        this.http2.emit("connection", socket);
      } else {
        // The HTTP/1 parser reads the socket's native handle directly and would never see the
        // unshifted bytes; resuming replays them through the 'data' listener the server attached.
        this.http1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
  }
}

class HttpExchange implements Exchange {
  readonly httpVersion: string;
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly clientGoneSignal: Promise<void>;
  private gone = false;
  // Set when the endpoint calls end(): 'finish' cannot tell, since Http2ServerResponse emits it
  // also when the client resets the stream.
  private ended = false;
  // Settles when the response closes for any reason: finished, client gone, or server closing.
  private readonly closed: Promise<void>;

  constructor(
    private readonly req: RequestLike,
    private readonly res: ResponseLike,
    isServerClosing: () => boolean,
  ) {
    this.httpVersion = req.httpVersion;
    this.method = req.method ?? "GET";
    this.url = req.url ?? "/";
    this.headers = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined) this.headers[name.toLowerCase()] = Array.isArray(value) ? value.join(",") : value;
    }
    // Both request and response re-emit transport errors (resets); the 'close' below covers them.
    req.on("error", () => undefined);
    res.on("error", () => undefined);
    this.closed = new Promise<void>((resolve) => res.once("close", resolve));
    this.clientGoneSignal = new Promise<void>((resolve) => {
      res.once("close", () => {
        // Connections the endpoint itself destroys on close() are not the client's doing.
        if (this.ended || isServerClosing()) return;
        this.gone = true;
        resolve();
      });
    });
  }

  get clientGone(): boolean {
    return this.gone;
  }

  async readBody(): Promise<Uint8Array> {
    const chunks: Buffer[] = [];
    let complete = false;
    const read = (async () => {
      for await (const chunk of this.req) chunks.push(chunk as Buffer);
      complete = true;
    })();
    await Promise.race([read, this.closed]);
    if (!complete) {
      read.catch(() => undefined);
      throw new Error("connection closed during the request body");
    }
    return Buffer.concat(chunks);
  }

  discardBody(): void {
    this.req.resume();
  }

  async send(status: number, headers: Record<string, string>, body: Uint8Array | string): Promise<void> {
    if (this.gone) return;
    const bytes = typeof body === "string" ? Buffer.from(body) : body;
    this.res.writeHead(status, { ...headers, "content-length": String(bytes.byteLength) });
    this.ended = true;
    await new Promise<void>((resolve) => {
      this.res.end(bytes, () => resolve());
      void this.closed.then(resolve);
    });
  }

  startStream(status: number, headers: Record<string, string>): void {
    if (this.gone) return;
    this.res.writeHead(status, headers);
    // Without this the status line waits for the first event, and a client would see nothing
    // during a long first eventDelayMs.
    this.res.flushHeaders?.();
  }

  async write(chunk: Uint8Array): Promise<boolean> {
    if (this.gone) return false;
    if (!this.res.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.res.off("drain", done);
          resolve();
        };
        this.res.once("drain", done);
        void this.closed.then(done);
      });
    }
    return !this.gone;
  }

  abort(): void {
    this.ended = true;
    this.res.destroy();
  }

  async end(): Promise<void> {
    if (this.gone) return;
    this.ended = true;
    await new Promise<void>((resolve) => {
      this.res.end(() => resolve());
      void this.closed.then(resolve);
    });
  }
}
