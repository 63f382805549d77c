/**
 * How the CLI ends: what it wrote reaches the reader, and the exit code says how it went.
 *
 * On POSIX, Node writes to a pipe asynchronously: what the reader has not taken yet waits in
 * this process, and `process.exit()` drops it (`latchkey clients list | cat` once printed 438,528
 * of 1,996,494 bytes and exited 0). So the CLI exits only once stdout and stderr are drained.
 */

/** The exit codes of every command, one meaning each (EXIT_CODES_HELP, README "CLI"). */
export const EXIT = {
  ok: 0,
  /** An unexpected failure (the database unreachable, …), or work left half done (see the command's help). */
  failed: 1,
  /** Refused: a usage, configuration or input error, or the embedded store is in use. */
  usage: 2,
  /** The reader closed stdout or stderr before everything was written: 128 + SIGPIPE, as a Unix tool stopped by it. */
  outputClosed: 141,
} as const;

/** Shown under every `latchkey <command> --help` and `latchkey --help`. */
export const EXIT_CODES_HELP = `Exit codes:
  0    done
  1    failed: an unexpected error (e.g. the database is unreachable), or a step after the
       change failed (the command's help says which); the message is on stderr
  2    refused: a usage, configuration or input error (unknown client, user or key), or the
       embedded store is in use by a running server or cannot be made private to this user;
       the message is on stderr
  141  the reader closed stdout or stderr before all output was written (e.g. \`| head -1\`),
       as for a Unix tool stopped by SIGPIPE; nothing more is printed`;

/** Prints one JSON document on stdout, as every list command's `--json` does. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

let outputError: NodeJS.ErrnoException | undefined;

/**
 * A write to a closed pipe (`latchkey clients list | head -1`) fails with EPIPE, emitted as an
 * 'error' event that would otherwise end the process with a stack trace. The command runs on
 * to its end instead (its audit events are still written) and exits with EXIT.outputClosed.
 */
export function watchOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => { outputError ??= err; });
  }
}

/** Whether a write to stdout or stderr failed (the reader went away): a command that runs until stopped stops. */
export function outputClosed(): boolean {
  return outputError !== undefined;
}

/** Resolves once everything written to `stream` so far has been handed to the OS (or cannot be). */
function drained(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) return resolve();
    // Writes complete in order: the callback of this empty one runs after every earlier one.
    stream.write('', () => resolve());
  });
}

/** Exits with `code` once stdout and stderr are drained; a closed output turns success into EXIT.outputClosed. */
export async function exitWhenDrained(code: number): Promise<never> {
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  if (outputError && code === EXIT.ok) code = outputError.code === 'EPIPE' ? EXIT.outputClosed : EXIT.failed;
  process.exit(code);
}
