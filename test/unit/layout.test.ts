/**
 * The layout a newcomer reads from `ls src`: the README's "Where things live" table names every
 * folder and top-level file there, and imports only point down (cli and api use producer,
 * delivery and db; the worker uses delivery and db; nothing imports the api or the cli).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const src = join(root, 'src');
const readme = readFileSync(join(root, 'README.md'), 'utf8');

/** Folders each folder of src/ may import from (besides itself and the top-level files). */
const MAY_IMPORT: Record<string, readonly string[]> = {
  db: [],
  delivery: ['db'],
  producer: ['db', 'delivery'],
  worker: ['db', 'delivery'],
  dashboard: ['db', 'delivery', 'producer'],
  api: ['db', 'delivery', 'producer', 'dashboard'],
  cli: ['db', 'delivery', 'producer', 'worker', 'dashboard'],
};

/** The cli commands that start the api server, the one place allowed to import it. */
const API_STARTERS = new Set(['cli/api.ts', 'cli/start.ts']);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** The src/ folder a relative import from `file` lands in, or undefined for a top-level file. */
function importedFolders(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const folders: string[] = [];
  for (const match of text.matchAll(/from '(\.{1,2}\/[^']+)'/g)) {
    const target = relative(src, join(file, '..', match[1]!));
    const [first, ...rest] = target.split('/');
    if (rest.length > 0 && first !== undefined) folders.push(first);
  }
  return folders;
}

describe('the source layout', () => {
  const entries = readdirSync(src).filter((name) => name !== 'index.ts');
  const folders = entries.filter((name) => statSync(join(src, name)).isDirectory());

  it('has a row in the README for every folder of src/', () => {
    for (const folder of folders) expect(readme).toContain(`| \`src/${folder}/\``);
  });

  it('has no folder that the import rules do not know', () => {
    expect(folders.sort()).toEqual(Object.keys(MAY_IMPORT).sort());
  });

  it('imports only downwards between folders', () => {
    const wrong: string[] = [];
    for (const folder of folders) {
      for (const file of sourceFiles(join(src, folder))) {
        const name = relative(src, file);
        for (const target of importedFolders(file)) {
          if (target === folder || MAY_IMPORT[folder]!.includes(target)) continue;
          if (target === 'api' && API_STARTERS.has(name)) continue;
          wrong.push(`${name} imports src/${target}/`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });
});
