import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Cluster, Redis } from 'ioredis';

const COMMANDS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'commands');

export interface ScriptSource {
  readonly name: string;
  readonly numberOfKeys: number;
  readonly lua: string;
  /** First 8 hex digits of the SHA-1 of the resolved source: the script's version. */
  readonly version: string;
}

/** Inlines `--- @include "includes/x"` lines; includes may not nest. */
function resolveIncludes(lua: string): string {
  return lua.replace(/^--- @include "([a-z/-]+)"$/gm, (_m, rel: string) =>
    readFileSync(path.join(COMMANDS_DIR, `${rel}.lua`), 'utf8'),
  );
}

/** Reads `commands/<name>-<numKeys>.lua` files: the file name carries the key count. */
export function loadScripts(): ScriptSource[] {
  return readdirSync(COMMANDS_DIR)
    .filter((f) => f.endsWith('.lua'))
    .map((file) => {
      const m = /^([a-z-]+)-(\d+)\.lua$/.exec(file);
      if (!m) throw new Error(`script file name must be <name>-<numKeys>.lua: ${file}`);
      const lua = resolveIncludes(readFileSync(path.join(COMMANDS_DIR, file), 'utf8'));
      return {
        name: m[1] as string,
        numberOfKeys: Number(m[2]),
        lua,
        version: createHash('sha1').update(lua).digest('hex').slice(0, 8),
      };
    });
}

const VERSIONS = new Map(loadScripts().map((s) => [s.name, s.version]));

/**
 * The command a script is registered under: its name and the hash of its content
 * (`identityApply_1a2b3c4d`), so two deployed versions never run each other's scripts and a change
 * to a script can never be forgotten in a version number.
 */
export function commandName(scriptName: string): string {
  const known = NAMES.get(scriptName);
  if (known) return known;
  const version = VERSIONS.get(scriptName);
  if (!version) throw new Error(`no Redis script named ${scriptName}`);
  const camel = scriptName.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
  const name = `${camel}_${version}`;
  NAMES.set(scriptName, name);
  return name;
}

/** Names already made: the store asks for one on every call. */
const NAMES = new Map<string, string>();

/** Registers every script on a client with `defineCommand` (EVALSHA with EVAL fallback). */
export function defineScripts(client: Redis | Cluster): void {
  for (const s of loadScripts()) {
    client.defineCommand(commandName(s.name), { numberOfKeys: s.numberOfKeys, lua: s.lua });
  }
}
