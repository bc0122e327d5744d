import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';

const COMMANDS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'commands');

/**
 * Bumped whenever any script's contract (keys, arguments, return values) changes. Scripts are
 * registered under `<name>V<version>`, so two deployed versions never run each other's scripts.
 */
export const SCRIPTS_VERSION = 1;

export interface ScriptSource {
  readonly name: string;
  readonly numberOfKeys: number;
  readonly lua: string;
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
      return {
        name: m[1] as string,
        numberOfKeys: Number(m[2]),
        lua: resolveIncludes(readFileSync(path.join(COMMANDS_DIR, file), 'utf8')),
      };
    });
}

export function commandName(scriptName: string): string {
  const camel = scriptName.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
  return `${camel}V${SCRIPTS_VERSION}`;
}

/** Registers every script on a client with `defineCommand` (EVALSHA with EVAL fallback). */
export function defineScripts(client: Redis): void {
  for (const s of loadScripts()) {
    client.defineCommand(commandName(s.name), { numberOfKeys: s.numberOfKeys, lua: s.lua });
  }
}
