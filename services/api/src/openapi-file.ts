import { fileURLToPath } from 'node:url';

/** The committed copy of the OpenAPI document, written by openapi-cli.ts and checked by tests. */
export const OPENAPI_FILE: string = fileURLToPath(new URL('../openapi.json', import.meta.url));
