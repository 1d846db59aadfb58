#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import type { Logger } from 'pino';
import { isStrataError } from '../common/strata-error.js';
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

// One line per command. Only the command that runs is imported (all of them for the
// top-level help): the coordinator daemon then never loads tfjs (~55 MB resident).
const commands: Record<string, () => Promise<Command>> = {
  train: async () => (await import('./commands/train.js')).trainCommand(getLogger),
  coordinator: async () => (await import('./commands/coordinator.js')).coordinatorCommand(getLogger),
  agent: async () => (await import('./commands/agent.js')).agentCommand(getLogger),
  cl: async () => (await import('./commands/cl.js')).clCommand(getLogger),
  profiles: async () => (await import('./commands/profiles.js')).profilesCommand(),
  simulate: async () => (await import('./commands/simulate.js')).simulateCommand(getLogger),
  worker: async () => (await import('./commands/worker.js')).workerCommand(getLogger),
};
const wanted = process.argv.slice(2).find((a) => !a.startsWith('-'));
for (const name of wanted !== undefined && Object.hasOwn(commands, wanted) ? [wanted] : Object.keys(commands)) program.addCommand(await commands[name]!());
for (const cmd of program.commands) cmd.exitOverride().configureOutput(output);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help / --version end here with exit code 0.
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  // Argument parsers throw StrataErrors wrapped by commander's InvalidArgumentError path.
  // One line: the code first (what scripts and tests match), then the message naming the flag or file.
  if (isStrataError(err)) fail(err.message.startsWith(err.code) ? err.message : `${err.code}: ${err.message}`, err.code === 'STRATA_ERR_BAD_FLAG' ? 2 : 1);
  fail(err instanceof Error ? `internal error: ${err.message}` : String(err), 1);
}
