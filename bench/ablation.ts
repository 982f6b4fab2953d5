/**
 * What each piece of a governed call costs where it runs: in the SDK's pipeline, between SDK
 * calls, with their garbage — not in a tight loop of its own (`bench/pieces.ts`), where its code
 * and data stay in the CPU's caches. For each piece, a copy of the built package with that piece
 * stubbed out (its first call's result reused, or the step skipped) is measured against the built
 * package and the bare client, interleaved, in a fresh process of its own: the difference of the
 * medians is what the piece costs a memoized Converse call.
 *
 * A diagnostic: the stubbed copies decide nothing and must never be used. It edits the bundle's
 * text, so it fails loudly (naming the piece) when the authorization middleware's code changes.
 *
 *   npm run build && npx tsx bench/ablation.ts
 * @module
 */
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { promisify } from "node:util";
import { fileURLToPath, pathToFileURL } from "node:url";

/** A piece of the governed call, and the edits of the bundle that stub it out. */
interface Piece {
  readonly name: string;
  readonly label: string;
  /** Each edit: the text to find (once) — or a pattern, for names the bundler may rename (`decide2`) — and its replacement. */
  readonly edits: readonly (readonly [find: string | RegExp, replace: string])[];
}

const PIECES: readonly Piece[] = [
  {
    name: "decision",
    label: "the decision: the Cedar request, its checks, the slice, the memo lookup",
    edits: [[/let authorization = (decide\d*)\(/, "let authorization = globalThis.__ablation_decision ??= $1("]],
  },
  {
    name: "attribution",
    label: "attribution: requestMetadata built, then serialized by the SDK",
    edits: [["const sent = call.sentInput = attributedInput(call, input);", "const sent = call.sentInput = input;"]],
  },
  {
    name: "snapshot",
    label: "the input snapshot",
    edits: [["input = snapshotInput(args.input);", "input = args.input;"]],
  },
  {
    name: "span",
    label: "the span (no tracer provider: a no-op span) and its identity attributes",
    edits: [
      [
        "const span = startCallSpan(governance.tracer, commandName, spec, input, governance.captureContent);",
        "const span = globalThis.__ablation_span ??= startCallSpan(governance.tracer, commandName, spec, input, governance.captureContent);",
      ],
    ],
  },
  {
    name: "signature",
    label: "the signature check (attempt middleware)",
    edits: [["    checkSignature(call, args.request);\n", ""]],
  },
];
const EVERYTHING: Piece = {
  name: "all",
  label: "all of the above, and the credentials plan, the tool offers, the response observation and the call's end",
  edits: [
    ...PIECES.flatMap((piece) => piece.edits),
    ["credentials = await options.credentials.plan(request, spec.action);", "credentials = globalThis.__ablation_plan ??= await options.credentials.plan(request, spec.action);"],
    ["const step = offerTools(spec, requested, {", "const step = globalThis.__ablation_offer ??= offerTools(spec, requested, {"],
    ["      observeOutput(call.observation, output, call.responseHeaders, governance.captureContent);\n", ""],
    ['    call.finish("completed");\n    return result;\n  };\n}', "    return result;\n  };\n}"],
  ],
};

const dist = new URL("../dist/", import.meta.url);
// Beside the build, so that the copies resolve the package's dependencies and its schema as it does.
const copyOf = (piece: Piece) => new URL(`ablation-${piece.name}/`, dist);

/** Writes the copy of the built package with `piece` stubbed out; returns its path. */
function writeCopy(bundle: string, piece: Piece): string {
  let text = bundle;
  for (const [find, replace] of piece.edits) {
    const count = typeof find === "string" ? text.split(find).length - 1 : (text.match(new RegExp(find.source, "g")) ?? []).length;
    const shown = typeof find === "string" ? JSON.stringify(find.trim()) : String(find);
    if (count !== 1) throw new Error(`bench/ablation.ts: "${piece.name}": the built bundle holds ${count} copies of ${shown}; update its edit`);
    text = typeof find === "string" ? text.replace(find, () => replace) : text.replace(find, replace);
  }
  const directory = copyOf(piece);
  mkdirSync(directory, { recursive: true });
  const file = new URL("index.js", directory);
  writeFileSync(file, text);
  return fileURLToPath(file);
}

/** In a child process: bare, built and stubbed clients interleaved; prints the medians (µs) as JSON. */
async function child(stubbedPath: string, rounds: number): Promise<void> {
  const { BedrockRuntime, ConverseCommand } = await import("@aws-sdk/client-bedrock-runtime");
  const { CREDENTIALS, MemoryBedrock } = await import("./memory-bedrock.js");
  const { BENCH_IDENTITY, CONVERSE_INPUT, ENVIRONMENT, generatePolicies, REGION } = await import("./policies.js");
  const { interleave, median, warmUp } = await import("./stats.js");
  type Library = typeof import("../src/index.js");
  const governed = async (path: string) => {
    const library = (await import(path)) as Library;
    const governance = library.createGovernance({ environment: ENVIRONMENT, policies: generatePolicies(10) });
    const client = new library.GovernedBedrockRuntimeClient({ region: REGION, credentials: CREDENTIALS, requestHandler: new MemoryBedrock(), governance });
    return async () => {
      const command = new ConverseCommand(CONVERSE_INPUT);
      const start = performance.now();
      await library.runAs(BENCH_IDENTITY, () => client.send(command));
      return performance.now() - start;
    };
  };
  const bareClient = new BedrockRuntime({ region: REGION, credentials: CREDENTIALS, requestHandler: new MemoryBedrock() });
  const variants = {
    bare: async () => {
      const command = new ConverseCommand(CONVERSE_INPUT);
      const start = performance.now();
      await bareClient.send(command);
      return performance.now() - start;
    },
    built: await governed(new URL("index.js", dist).href),
    stubbed: await governed(pathToFileURL(stubbedPath).href),
  };
  await warmUp(variants, 500);
  const samples = await interleave(variants, rounds);
  console.log(JSON.stringify({ bare: median(samples.bare) * 1000, built: median(samples.built) * 1000, stubbed: median(samples.stubbed) * 1000 }));
}

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const rounds = quick ? 800 : 2500;
  const bundle = readFileSync(new URL("index.js", dist), "utf8");
  console.log(`What each piece costs a memoized Converse call (10 policies), in the SDK's pipeline: the built package vs a copy with the piece stubbed out, ${rounds} interleaved rounds each, a fresh process per piece`);
  console.log(`${"piece".padEnd(110)} ${"built − bare".padStart(12)} ${"stubbed − bare".padStart(14)} ${"the piece".padStart(10)}`);
  for (const piece of [...PIECES, EVERYTHING]) {
    // The copies never outlive their measurement: dist/ is what the package ships.
    try {
      const path = writeCopy(bundle, piece);
      const { stdout } = await promisify(execFile)(process.execPath, ["--no-warnings", "--import", "tsx", fileURLToPath(import.meta.url), "--child", path, String(rounds)], {
        maxBuffer: 1 << 20,
      });
      const { bare, built, stubbed } = JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<"bare" | "built" | "stubbed", number>;
      const us = (value: number) => `${value.toFixed(1)} µs`;
      console.log(`${piece.label.padEnd(110)} ${us(built - bare).padStart(12)} ${us(stubbed - bare).padStart(14)} ${us(built - stubbed).padStart(10)}`);
    } finally {
      rmSync(copyOf(piece), { recursive: true, force: true });
    }
  }
  console.log("(each line is its own process: the built package's figure moves by a few µs from one to the next on a shared machine)");
}

const childIndex = process.argv.indexOf("--child");
(childIndex >= 0 ? child(process.argv[childIndex + 1]!, Number(process.argv[childIndex + 2])) : main()).catch((error: unknown) => {
  console.error("ablation crashed:", error);
  process.exitCode = 1;
});
