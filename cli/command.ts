/** The shape of one `phonebill` subcommand. */
export interface CliCommand {
  /** One line for `phonebill --help`. */
  summary: string;
  /** Full usage text for `phonebill <command> --help`. */
  usage: string;
  /** Runs with the arguments after the command name; resolves to the exit code. */
  run(argv: string[]): Promise<number>;
}
