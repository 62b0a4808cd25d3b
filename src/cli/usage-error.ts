/**
 * A problem the user can fix (a mistake in the command line, a port in use,
 * an unusable data directory): printed as one line with a hint, without a
 * stack, exit code 2.
 */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * node:util parseArgs errors in plain words, with the way to the options:
 * its own messages suggest `-- "--bogus"`, which is never what a user meant.
 */
export function parseArgsError(error: unknown, command: string): UsageError {
  const { code, message } = error as { code?: string; message: string };
  const option = /'(-[^']*)'/.exec(message)?.[1];
  const help = `see 'seqcast ${command} --help'`;
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return new UsageError(`unknown option ${option ?? message}; ${help}`);
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return new UsageError(
        /argument missing/.test(message) ? `${option?.split(" ")[0] ?? "an option"} needs a value; ${help}` : `${message.replace(/\.$/, "")}; ${help}`,
      );
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return new UsageError(`unexpected argument ${/'([^']*)'/.exec(message)?.[0] ?? ""}; options start with --; ${help}`);
    default:
      return new UsageError(`${message}; ${help}`);
  }
}
