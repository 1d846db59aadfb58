import { Command } from 'commander';
import { priceList } from '../../profiles/price-list.js';
import { listProfiles, loadProfile } from '../../profiles/profile-loader.js';
import { formatPriceTable, formatProfileTable } from '../../profiles/profile-table.js';

export function profilesCommand(): Command {
  return new Command('profiles')
    .description('list the device profiles and their price lists (or show one: strata profiles NAME|FILE)')
    .argument('[profile]', 'a profile name or JSON file to show in full')
    .option('--json', 'print the profiles as JSON')
    .action((profile: string | undefined, flags: { json?: boolean }) => {
      const profiles = profile === undefined ? listProfiles() : [loadProfile(profile)];
      const withPrices = profiles.map((p) => ({ ...p, priceList: priceList(p) }));
      if (flags.json === true) {
        process.stdout.write(`${JSON.stringify(withPrices)}\n`);
        return;
      }
      if (profile !== undefined) {
        process.stdout.write(`${JSON.stringify(withPrices[0], null, 2)}\n`);
        return;
      }
      process.stdout.write(`${formatProfileTable(profiles).join('\n')}\n\n`);
      process.stdout.write('price list: what counted work costs each device (joules above idle; idle W is drawn for every device second)\n');
      process.stdout.write(`${formatPriceTable(profiles).join('\n')}\n`);
    });
}
