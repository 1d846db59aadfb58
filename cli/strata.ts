#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import type { Logger } from 'pino';
import { isStrataError } from '../common/strata-error.js';
import { clCommand } from './commands/cl.js';
import { profilesCommand } from './commands/profiles.js';
import { coordinatorCommand } from './commands/coordinator.js';
import { trainCommand } from './commands/train.js';
import { createRootLogger } from './logger.js';

let rootLogger: Logger | undefined;
const getLogger = (): Logger => (rootLogger ??= createRootLogger({ quiet: process.argv.includes('--json') }));

function fail(message: string, exitCode: number): never {
  process.stderr.write(`strata: ${message.split('\n')[0]}\n`);
  process.exit(exitCode);
}

// commander's own errors (unknown option, missing value): one line.
const output = {
  outputError: (str: string, write: (s: string) => void) => write(`strata: ${str.replace(/^error: /, '').split('\n')[0]}\n`),
};

const program = new Command('strata')
  .description('Strata: federated + continual learning for edge devices')
  .version('0.1.0')
  .exitOverride()
  .configureOutput(output);

program.addCommand(trainCommand(getLogger));
program.addCommand(coordinatorCommand(getLogger));
program.addCommand(clCommand(getLogger));
program.addCommand(profilesCommand());
for (const cmd of program.commands) cmd.exitOverride().configureOutput(output);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help / --version end here with exit code 0.
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  // Argument parsers throw StrataErrors wrapped by commander's InvalidArgumentError path.
  if (isStrataError(err)) fail(err.message, err.code === 'STRATA_ERR_BAD_FLAG' ? 2 : 1);
  fail(err instanceof Error ? `internal error: ${err.message}` : String(err), 1);
}
