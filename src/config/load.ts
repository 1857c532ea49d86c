import convict from 'convict';
import { parseArgs } from 'node:util';
import { ConfigError, describeError } from '../errors.js';
import { schema, type Config } from './schema.js';

type Key = keyof typeof schema;

/** Flags every command understands besides the schema's. */
const EXTRA = { config: { type: 'string' as const }, help: { type: 'boolean' as const, short: 'h' } };

function isBoolean(key: Key): boolean {
  return schema[key].format === Boolean;
}

function isArray(key: Key): boolean {
  return schema[key].format === Array;
}

/** The parsed command line: validated configuration, positional arguments, and whether help was asked. */
export interface Loaded {
  config: Config;
  positionals: string[];
  help: boolean;
}

/**
 * Parse flags, then build the configuration: schema defaults < --config file < environment < flags.
 * Unknown flags and invalid values are errors that name the option and what it accepts.
 */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): Loaded {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = { ...EXTRA };
  for (const key of Object.keys(schema) as Key[]) {
    options[schema[key].arg] = { type: isBoolean(key) ? 'boolean' : 'string', ...(isArray(key) ? { multiple: true } : {}) };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new ConfigError(`${describeError(err)}; see \`kbrackup help\``);
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const scalarArgs: string[] = [];
  for (const key of Object.keys(schema) as Key[]) {
    const value = values[schema[key].arg];
    if (value === undefined || isArray(key)) continue;
    scalarArgs.push(`--${schema[key].arg}=${String(value)}`);
  }
  let config: Config;
  try {
    config = convict(schema, { env, args: scalarArgs }) as unknown as Config;
    if (typeof values.config === 'string') config.loadFile(values.config);
    // Lists come from flags as given, so a comma inside a path is not split.
    for (const key of Object.keys(schema) as Key[]) {
      const value = values[schema[key].arg];
      if (isArray(key) && Array.isArray(value)) config.set(key, value as never);
    }
    config.validate({ allowed: 'strict' });
  } catch (err) {
    throw new ConfigError(`invalid configuration: ${describeError(err).replace(/\n/g, '; ')}`);
  }
  return { config, positionals: parsed.positionals, help: values.help === true };
}

/** Option descriptions for `help`. */
export function describeOptions(keys: Key[]): string {
  return keys
    .map((key) => {
      const s = schema[key];
      const flag = `--${s.arg}${isBoolean(key) ? '' : ' VALUE'}`;
      return `  ${flag.padEnd(34)} ${s.doc} [env ${s.env}]`;
    })
    .join('\n');
}
