import { readdirSync, readFileSync } from 'node:fs';

/*
 * Where an end-to-end run's CPU went, per message. On the two-core machine the end-to-end figures
 * come from, the run is CPU-bound (the machine is idle a few per cent of the time) and most of the
 * CPU is PostgreSQL's, not the Node processes'; a figure that falls is then read against these.
 * Linux only (/proc); elsewhere nothing is recorded.
 */

/** Who a process is, for the accounting: the bench process itself, its consumer child, the servers, the rest. */
export type CpuRole = 'producer' | 'consumer' | 'postgres' | 'broker' | 'other';

/** CPU time used so far, in microseconds: per role, and the whole machine busy and idle. */
export interface CpuSnapshot {
  readonly byRole: Readonly<Record<CpuRole, number>>;
  readonly machineBusyUs: number;
  readonly machineIdleUs: number;
}

/** /proc's clock ticks (USER_HZ, 100 on Linux) in microseconds. */
const TICK_US = 10_000;
/** Process names of the brokers' servers. */
const BROKER_SERVERS = new Set(['nats-server', 'beam.smp']);

/** CPU used so far on this machine, by role; `consumerPid` is the consuming service's process. */
export function cpuSnapshot(consumerPid: number | undefined): CpuSnapshot | undefined {
  let stat: string;
  try {
    stat = readFileSync('/proc/stat', 'utf8');
  } catch {
    return undefined;
  }
  // cpu  user nice system idle iowait irq softirq steal …
  const fields = stat.slice(0, stat.indexOf('\n')).trim().split(/\s+/).slice(1).map(Number);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  const total = fields.slice(0, 8).reduce((sum, n) => sum + n, 0);
  const byRole: Record<CpuRole, number> = { producer: 0, consumer: 0, postgres: 0, broker: 0, other: 0 };
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let processStat: string;
    try {
      processStat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // the process ended meanwhile
    }
    const nameEnd = processStat.lastIndexOf(')');
    const name = processStat.slice(processStat.indexOf('(') + 1, nameEnd);
    // After the name: state, ppid, … utime is the 14th field of the line, stime the 15th.
    const rest = processStat.slice(nameEnd + 2).split(' ');
    const used = (Number(rest[11]) + Number(rest[12])) * TICK_US;
    const pid = Number(entry);
    const role: CpuRole =
      pid === process.pid
        ? 'producer'
        : pid === consumerPid
          ? 'consumer'
          : name === 'postgres'
            ? 'postgres'
            : BROKER_SERVERS.has(name)
              ? 'broker'
              : 'other';
    byRole[role] += used;
  }
  return { byRole, machineBusyUs: (total - idle) * TICK_US, machineIdleUs: idle * TICK_US };
}

/** What {@link cpuPerMessage} measured: the metrics, and the same as one clause for the run's log. */
export interface CpuPerMessage {
  readonly metrics: Record<string, number>;
  /** `; CPU 1380 µs/msg (postgres 809, producer 247, …), machine idle 8%`, or '' when nothing was measured. */
  readonly summary: string;
}

const ROLES = ['postgres', 'producer', 'consumer', 'broker', 'other'] as const;

/**
 * The CPU each message cost between two snapshots, as metrics named `<prefix>_cpu_us_per_msg`
 * (the whole machine), `<prefix>_<role>_cpu_us_per_msg` and `<prefix>_machine_idle_pct`. A
 * process that started or ended between the snapshots counts only for what it used while both
 * saw it; 'other' is what the machine used beyond the named roles (the kernel's own work among it).
 */
export function cpuPerMessage(
  prefix: string,
  before: CpuSnapshot | undefined,
  after: CpuSnapshot | undefined,
  messages: number,
): CpuPerMessage {
  if (!before || !after || messages <= 0) return { metrics: {}, summary: '' };
  const perMessage = (us: number) => Math.round(us / messages);
  const busy = after.machineBusyUs - before.machineBusyUs;
  const idle = after.machineIdleUs - before.machineIdleUs;
  const byRole: Partial<Record<CpuRole, number>> = {};
  let named = 0;
  for (const role of ROLES) {
    if (role === 'other') continue;
    const used = Math.max(0, after.byRole[role] - before.byRole[role]);
    named += used;
    if (used > 0) byRole[role] = perMessage(used);
  }
  byRole.other = perMessage(Math.max(0, busy - named));
  const total = perMessage(busy);
  const idlePct = Math.round((idle / Math.max(1, busy + idle)) * 1000) / 10;
  const metrics: Record<string, number> = { [`${prefix}_cpu_us_per_msg`]: total };
  const parts: string[] = [];
  for (const role of ROLES) {
    const us = byRole[role];
    if (us === undefined) continue;
    metrics[`${prefix}_${role}_cpu_us_per_msg`] = us;
    parts.push(`${role} ${us}`);
  }
  metrics[`${prefix}_machine_idle_pct`] = idlePct;
  return { metrics, summary: `; CPU ${total} µs/msg (${parts.join(', ')}), machine idle ${idlePct}%` };
}
