/**
 * A real `redis-server` for a test file: started on a free loopback port with nothing persisted,
 * stopped after. When `redis-server` is not installed the Redis tests are skipped with a message
 * saying how to install it — except in CI (`CI` set), where they fail with that message.
 *
 * ```ts
 * const redis = redisTestServer();
 * describe("redis", { skip: redis.skip }, () => {
 *   before(() => redis.start());
 *   after(() => redis.stop());
 *   it("...", async () => { const store = redisUsageStore({ url: redis.url }); ... });
 * });
 * ```
 * @module
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

export const REDIS_MISSING = "install redis-server (Debian: apt-get install redis-server)";

/** The path of `redis-server`, or undefined when it is not on PATH. */
export function redisServerPath(): string | undefined {
  for (const directory of (process.env["PATH"] ?? "").split(delimiter)) {
    if (directory.length === 0) continue;
    const candidate = join(directory, "redis-server");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** One reply of the Redis protocol (RESP2). */
export type Resp = string | number | null | Error | Resp[];

export interface RedisTestServer {
  /** The skip reason for `describe(..., { skip })`: a message when Redis tests cannot run here, else false. */
  readonly skip: string | false;
  readonly port: number;
  readonly url: string;
  /** Starts the server (on the same port when it ran before); resolves once it answers PING. */
  start(): Promise<void>;
  /** Stops it (SIGTERM) and waits for it to exit. Nothing is persisted: a restart starts empty. */
  stop(): Promise<void>;
  /** Freezes it (SIGSTOP): connections stay open, nothing is answered. */
  pause(): void;
  /** Thaws it (SIGCONT). */
  resume(): void;
  /** Sends one command on a fresh connection and returns the reply. */
  command(...args: (string | number)[]): Promise<Resp>;
  /** `INFO commandstats` as `{ evalsha: calls, ... }` (command names lower-case). */
  commandStats(): Promise<Record<string, number>>;
}

/** A server for this test file (not started yet). */
export function redisTestServer(): RedisTestServer {
  const binary = redisServerPath();
  const skip = binary === undefined && !process.env["CI"] ? REDIS_MISSING : false;
  let port = 0;
  let child: ChildProcess | undefined;
  let dir: string | undefined;
  let output = "";

  const kill = () => child?.kill("SIGKILL");
  const server: RedisTestServer = {
    skip,
    get port() {
      return port;
    },
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    async start() {
      if (binary === undefined) throw new Error(REDIS_MISSING);
      if (child && child.exitCode === null && child.signalCode === null) return;
      dir ??= mkdtempSync(join(tmpdir(), "warden-redis-"));
      for (let attempt = 0; ; attempt++) {
        if (port === 0 || attempt > 0) port = await freePort();
        output = "";
        const started = spawn(
          binary,
          ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--protected-mode", "yes"],
          { stdio: ["ignore", "pipe", "pipe"] },
        );
        started.stdout?.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
        started.stderr?.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
        child = started;
        process.once("exit", kill);
        try {
          await waitForPing(port, started);
          return;
        } catch (error) {
          started.kill("SIGKILL");
          // The port was taken between choosing and binding it: choose another (a restart keeps its port unless so).
          if (attempt < 3 && /Address already in use/i.test(output)) continue;
          throw new Error(`redis-server did not start on port ${port}: ${(error as Error).message}\n${output}`);
        }
      }
    },
    async stop() {
      const running = child;
      child = undefined;
      process.removeListener("exit", kill);
      if (running && running.exitCode === null && running.signalCode === null) {
        const exited = new Promise<void>((resolve) => running.once("exit", () => resolve()));
        running.kill("SIGCONT");
        running.kill("SIGTERM");
        const timer = setTimeout(() => running.kill("SIGKILL"), 3_000);
        await exited;
        clearTimeout(timer);
      }
    },
    pause() {
      child?.kill("SIGSTOP");
    },
    resume() {
      child?.kill("SIGCONT");
    },
    command: (...args) => command(port, args),
    async commandStats() {
      const info = await command(port, ["INFO", "commandstats"]);
      const stats: Record<string, number> = {};
      for (const line of String(info).split(/\r?\n/)) {
        const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
        if (match) stats[(match[1] as string).toLowerCase()] = Number(match[2]);
      }
      return stats;
    },
  };
  // Nothing of the test's temporary directory should outlive it.
  process.once("exit", () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return server;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

async function waitForPing(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`it exited (${child.exitCode ?? child.signalCode})`);
    try {
      if ((await command(port, ["PING"])) === "PONG") return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error("no answer to PING within 10 s");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** One command on a fresh connection (RESP2), with a 5 s timeout. */
export function command(port: number, args: readonly (string | number)[]): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let buffer = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${String(args[0])} timed out`));
    }, 5_000);
    const done = (error: Error | undefined, value?: Resp) => {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(value as Resp);
    };
    socket.once("error", (error) => done(error));
    socket.on("connect", () => {
      let request = `*${args.length}\r\n`;
      for (const arg of args) {
        const text = Buffer.from(String(arg));
        request += `$${text.length}\r\n${text.toString("binary")}\r\n`;
      }
      socket.write(Buffer.from(request, "binary"));
    });
    socket.on("data", (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      const parsed = parse(buffer, 0);
      if (parsed !== undefined) done(undefined, parsed.value);
    });
  });
}

function parse(buffer: Buffer, at: number): { value: Resp; next: number } | undefined {
  const end = buffer.indexOf("\r\n", at);
  if (end < 0) return undefined;
  const line = buffer.toString("utf8", at + 1, end);
  const next = end + 2;
  switch (String.fromCharCode(buffer[at] as number)) {
    case "+":
      return { value: line, next };
    case "-":
      return { value: new Error(line), next };
    case ":":
      return { value: Number(line), next };
    case "$": {
      const length = Number(line);
      if (length < 0) return { value: null, next };
      if (buffer.length < next + length + 2) return undefined;
      return { value: buffer.toString("utf8", next, next + length), next: next + length + 2 };
    }
    case "*": {
      const count = Number(line);
      if (count < 0) return { value: null, next };
      const items: Resp[] = [];
      let position = next;
      for (let i = 0; i < count; i++) {
        const item = parse(buffer, position);
        if (item === undefined) return undefined;
        items.push(item.value);
        position = item.next;
      }
      return { value: items, next: position };
    }
    default:
      return { value: new Error(`unexpected reply: ${line}`), next };
  }
}
