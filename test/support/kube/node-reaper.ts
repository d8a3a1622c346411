import { reapSlotWhenOwnerDies } from './node-host.js';

/**
 * `node node-reaper.js <slot> <owner pid>`: started detached by acquireNodeHost (node-host.ts startReaper).
 * Waits for the slot's owner to die and cleans what it left (processes by pid, containerd shims, mounts, the
 * bridge, iptables rules and chains, cgroups, ip_forward); exits at once when the owner releases the slot.
 */
const [slot, owner] = process.argv.slice(2).map(Number);
if (!Number.isInteger(slot) || !Number.isInteger(owner)) {
  process.stderr.write('usage: node-reaper <slot> <owner pid>\n');
  process.exit(2);
}
process.on('SIGTERM', () => process.exit(0));
reapSlotWhenOwnerDies(slot as number, owner as number).then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`node reaper: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
