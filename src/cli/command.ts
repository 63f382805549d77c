/** One `latchkey <name>` subcommand. Later capabilities add theirs to the table in src/cli.ts. */
export interface Command {
  name: string;
  summary: string;
  /** Full help text, shown by `latchkey <name> --help`. */
  help: string;
  run(args: string[]): Promise<number>;
}

/** A failure the user can fix: printed as one message, exit code 2, no stack trace. */
export class UsageError extends Error {}
