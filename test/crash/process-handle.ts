import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';

/** A child Node process running a TypeScript file; it can be killed hard and started again. */
export class ProcessHandle {
  #child: ChildProcess | undefined;
  kills = 0;
  /** Exits nobody asked for (a crash of the process itself); the crash test expects none. */
  unexpectedExits = 0;
  output = '';
  #expectingExit = false;

  constructor(
    private readonly script: string,
    private readonly env: Record<string, string>,
  ) {}

  /** Whether the process runs: started, and not exited. */
  get running(): boolean {
    const child = this.#child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /** Starts the process and waits for it to print its `<role> ready` line. */
  async start(): Promise<void> {
    const child = spawn(process.execPath, ['--import', 'tsx', this.script], {
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child = child;
    this.#expectingExit = false;
    child.once('exit', (code, signal) => {
      if (this.#expectingExit) return;
      this.unexpectedExits++;
      this.output += `\n[exited by itself: ${code ?? signal}]\n`;
    });
    const ready = new Promise<void>((resolve, reject) => {
      // This run's own output: the whole output holds an earlier run's `ready` line.
      let own = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        this.output += chunk.toString();
        own += chunk.toString();
        if (/^\w+ ready$/m.test(own)) resolve();
      });
      child.stderr!.on('data', (chunk: Buffer) => {
        this.output += chunk.toString();
      });
      child.once('exit', (code, signal) =>
        reject(
          new Error(`${this.script} exited (${code ?? signal}) before ready:\n${this.output.slice(-2000)}`),
        ),
      );
    });
    await ready;
  }

  /** SIGKILL: no shutdown hooks, no goodbyes. */
  async kill(): Promise<void> {
    if (await this.#sigkill()) {
      this.kills++;
      this.#child = undefined;
    }
  }

  /** Ends the process, if it runs, without counting it as a fault (a failed test's clean-up). */
  async dispose(): Promise<void> {
    await this.#sigkill();
  }

  /** SIGKILLs the process if it runs and waits for its exit; resolves to whether it ran. */
  async #sigkill(): Promise<boolean> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return false;
    this.#expectingExit = true;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    return true;
  }

  /** SIGTERM, then wait for a clean exit. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null) return;
    this.#expectingExit = true;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
    this.#child = undefined;
  }
}
