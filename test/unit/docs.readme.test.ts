import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { commands as cliCommands } from '../../src/cli/commands.js';
import { CONFIG_VARIABLES } from '../../src/config.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const design = ['start', 'api', 'worker', 'migrate', 'sweep', 'bench'];

describe('README', () => {
  it.each(CONFIG_VARIABLES)('documents the environment variable %s', (name) => {
    expect(readme).toContain(`\`${name}\``);
  });

  const commands = Object.keys(cliCommands);
  it('lists every command the CLI has, and the CLI has every command of the design', () => {
    expect(commands).toEqual(expect.arrayContaining(design));
    for (const command of commands) expect(readme).toContain(`hookfleet ${command}`);
  });

  it('gives the two set-up commands', () => {
    expect(readme).toContain('npm install && npm start');
    expect(readme).toContain('npm test');
  });
});
