import { Command } from 'commander';
import { listProfiles, loadProfile } from '../../profiles/profile-loader.js';
import { formatProfileTable } from '../../profiles/profile-table.js';

export function profilesCommand(): Command {
  return new Command('profiles')
    .description('list the device profiles (or show one: strata profiles NAME|FILE)')
    .argument('[profile]', 'a profile name or JSON file to show in full')
    .option('--json', 'print the profiles as JSON')
    .action((profile: string | undefined, flags: { json?: boolean }) => {
      const profiles = profile === undefined ? listProfiles() : [loadProfile(profile)];
      if (flags.json === true) {
        process.stdout.write(`${JSON.stringify(profiles)}\n`);
        return;
      }
      if (profile !== undefined) {
        process.stdout.write(`${JSON.stringify(profiles[0], null, 2)}\n`);
        return;
      }
      process.stdout.write(`${formatProfileTable(profiles).join('\n')}\n`);
    });
}
