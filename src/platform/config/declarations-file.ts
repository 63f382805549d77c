import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

/**
 * The entries of a declarations file read at start-up (CLIENTS_FILE, TRUSTED_ISSUERS_FILE):
 * JSON when its name ends in .json, YAML otherwise; `{ <member>: [ … ] }` or just the list.
 * Read and parsed, not validated. `fail` makes the file's own error from a short reason.
 */
export function readDeclarationsFile(path: string, member: string, fail: (message: string) => Error): unknown[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw fail(`cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const json = path.toLowerCase().endsWith('.json');
  let document: unknown;
  try {
    document = json ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw fail(`is not valid ${json ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`);
  }
  const list = Array.isArray(document) ? document : (document as Record<string, unknown> | null)?.[member];
  if (!Array.isArray(list)) throw fail(`must hold a list of ${member} (a top-level \`${member}:\` list)`);
  return list;
}
