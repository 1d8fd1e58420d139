import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HookfleetError } from '../errors.js';

const HELP = `Usage: hookfleet bench [delivery|sweep|api|redis-bytes|fan-out|fairness] [--json]
                       [--deliveries N] [--endpoints N] [--workers N] [--concurrency N]
                       [--sweep-endpoints N] [--redis-url URL]
                       fairness: [--flood N] [--rate N] [--owners N] [--seconds N] [--before DIR]

Runs the benchmarks in bench/ (a source checkout; the same as 'npm run bench'): hookfleet against
a naive BullMQ worker and a no-database ceiling on one workload, end-to-end latency at a fixed
offered load, enqueue rate and worker memory; and the stale sweep on 1,000,000 endpoints.
'fairness': other owners' latency while one owner floods a slow endpoint, against a quiet run
(and the workers of the checkout in --before DIR), with Redis commands/s and worker CPU.
Creates and drops databases of its own; needs PostgreSQL at postgres://root@127.0.0.1:5432
and Redis at REDIS_URL.`;

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(HELP);
    return 0;
  }
  const script = fileURLToPath(new URL('../../bench/run.ts', import.meta.url));
  if (!existsSync(script)) {
    throw new HookfleetError(
      'not_available',
      'bench needs a source checkout of hookfleet (bench/ is not in the package)',
    );
  }
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...argv], { stdio: 'inherit' });
  return new Promise((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
}
