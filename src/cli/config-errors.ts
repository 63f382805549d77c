import { ConfigError, loadConfig, type Config } from '../server/config.js';
import { UsageError } from './command.js';

/** Loads the configuration or turns its problems into a UsageError (one line per problem). */
export function configOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
}
