/**
 * Where policies come from: text, a file, or a directory of `.cedar` files. Each source keeps
 * its name so that every problem is reported as `file:line:column`.
 * @module
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { ConfigurationError } from "../errors.js";

/**
 * Policy text and the name its problems are reported under (a path, or a name you choose).
 *
 * @example
 * ```ts
 * const documents: PolicyDocument[] = [{ source: "billing.cedar", text: await readFile("billing.cedar", "utf8") }];
 * createGovernance({ environment: "production", policies: documents });
 * ```
 */
export interface PolicyDocument {
  readonly source: string;
  readonly text: string;
}

/**
 * Policies given as text.
 *
 * @example
 * ```ts
 * const policies = policiesFromText(`permit(principal, action == Bedrock::Action::"Converse", resource);`, "inline");
 * ```
 */
export function policiesFromText(text: string, source = "inline"): PolicyDocument[] {
  if (typeof text !== "string") throw new ConfigurationError("policiesFromText: text must be a string of Cedar policies");
  return [{ source, text }];
}

/**
 * Policies read from one file.
 *
 * @example
 * ```ts
 * const policies = policiesFromFile("./policies/invoice-agent.cedar");
 * ```
 * @throws {@link ConfigurationError} when the file cannot be read.
 */
export function policiesFromFile(path: string): PolicyDocument[] {
  try {
    return [{ source: path, text: readFileSync(path, "utf8") }];
  } catch (error) {
    throw new ConfigurationError(`Cannot read policy file ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Every `*.cedar` file under a directory (recursively, in a stable order). Each problem names the
 * file relative to the directory you gave.
 *
 * @example
 * ```ts
 * const governance = createGovernance({ environment: "production", policies: policiesFromDirectory("./policies") });
 * ```
 * @throws {@link ConfigurationError} when the directory cannot be read or holds no `.cedar` file
 * (an empty policy set would deny everything, which is rarely what was meant).
 */
export function policiesFromDirectory(directory: string): PolicyDocument[] {
  const root = resolve(directory);
  let files: string[];
  try {
    files = listCedarFiles(root);
  } catch (error) {
    throw new ConfigurationError(`Cannot read policy directory ${directory}: ${(error as Error).message}`, { cause: error });
  }
  if (files.length === 0) {
    throw new ConfigurationError(`Policy directory ${directory} holds no .cedar file: add policies, or point to the right directory`);
  }
  return files.map((file) => ({ source: join(directory, relative(root, file)), text: readFileSync(file, "utf8") }));
}

function listCedarFiles(directory: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(directory, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    // Hidden entries are skipped: a Kubernetes ConfigMap mount keeps its files in "..<timestamp>/"
    // (and "..data"), reached through the symlinks beside them; reading both would load each twice.
    if (entry.name.startsWith(".")) continue;
    const path = join(directory, entry.name);
    if (entry.isDirectory()) found.push(...listCedarFiles(path));
    else if (entry.name.endsWith(".cedar") && (entry.isFile() || statSync(path).isFile())) found.push(path);
  }
  return found;
}
