import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { systemClock } from '../clock.js';
import { UserExists, UserRepository, type User } from '../store/users.js';
import { createPasswordHasher, PasswordRejected } from '../users/passwords.js';
import { UsageError, type Command } from './command.js';
import { configOrExit } from './config-errors.js';
import { readSecretFromStdin } from './read-secret.js';
import { withCliStore } from './store.js';

const HELP = `Usage: latchkey users <subcommand> [options]

  create --username NAME [--email ADDR] [--email-verified] [--name TEXT] [--given-name TEXT]
         [--family-name TEXT] [--preferred-username TEXT] [--locale TAG] [--phone-number NUM]
         [--password-stdin]
      Creates a user. Without --password-stdin a random password is generated and printed once.
  set-password USERNAME [--password-stdin]
      Replaces the password (generated and printed once unless read from standard input).
  disable USERNAME | enable USERNAME
      A disabled user cannot sign in.
  list [--json]
      Lists users (never password hashes).

Passwords are never taken from the command line (it is visible to other processes): pipe them in,
e.g. \`printf '%s' "$PW" | latchkey users set-password alice --password-stdin\`.
In embedded mode these commands refuse while a server owns DATA_DIR.`;

/** Login names: what a person types, so printable and unambiguous. */
const username = z.string().regex(/^[A-Za-z0-9._@+-]{1,64}$/, 'username: 1 to 64 letters, digits or . _ @ + -');
const email = z.email('email: not a valid address').max(254);

function generatedPassword(): string {
  return randomBytes(18).toString('base64url'); // 144 bits, 24 characters
}

function describeUser(u: User): Record<string, unknown> {
  return {
    sub: u.id, username: u.username, email: u.email, email_verified: u.email_verified, ...u.profile,
    phone_number: u.phone_number, disabled: u.disabled, has_password: u.password_hash !== null,
    created_at: u.created_at.toISOString(), updated_at: u.updated_at.toISOString(),
  };
}

async function findOrFail(repo: UserRepository, login: string | undefined): Promise<User> {
  if (!login) throw new UsageError('name the user: latchkey users <subcommand> USERNAME');
  const user = await repo.findByLogin(login);
  if (!user) throw new UsageError(`no user "${login}"`);
  return user;
}

export const usersCommand: Command = {
  name: 'users',
  summary: 'create, list, disable users and set their passwords',
  help: HELP,
  async run(argv) {
    const [sub, ...rest] = argv;
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        username: { type: 'string' }, email: { type: 'string' }, 'email-verified': { type: 'boolean' },
        name: { type: 'string' }, 'given-name': { type: 'string' }, 'family-name': { type: 'string' },
        'preferred-username': { type: 'string' }, locale: { type: 'string' }, 'phone-number': { type: 'string' },
        'password-stdin': { type: 'boolean' }, json: { type: 'boolean' },
      },
    });
    const config = configOrExit();
    const hasher = () => createPasswordHasher({ ...config.argon2, minLength: config.passwordMinLength });
    const newPassword = async () => (values['password-stdin'] ? { password: await readSecretFromStdin(), generated: false } : { password: generatedPassword(), generated: true });
    const now = () => systemClock.now();

    switch (sub) {
      case 'create': {
        const name = username.safeParse(values.username ?? '');
        if (!name.success) throw new UsageError(name.error.issues[0]!.message);
        if (values.email !== undefined && !email.safeParse(values.email).success) throw new UsageError('email: not a valid address');
        const { password, generated } = await newPassword();
        let hash: string;
        try { hash = await (await hasher()).hash(password); } catch (err) {
          if (err instanceof PasswordRejected) throw new UsageError(err.message);
          throw err;
        }
        const profile = Object.fromEntries(Object.entries({
          name: values.name, given_name: values['given-name'], family_name: values['family-name'],
          preferred_username: values['preferred-username'] ?? name.data, locale: values.locale,
        }).filter(([, v]) => v !== undefined)) as Record<string, string>;
        return withCliStore(config, async (store) => {
          try {
            const user = await new UserRepository(store.db).create({
              username: name.data, email: values.email ?? null, email_verified: values['email-verified'] ?? false,
              phone_number: values['phone-number'] ?? null, profile, password_hash: hash,
            }, now());
            process.stdout.write(`created user ${user.username} (sub ${user.id})\n`);
            if (generated) process.stdout.write(`password (shown once): ${password}\n`);
            return 0;
          } catch (err) {
            if (err instanceof UserExists) throw new UsageError(err.message);
            throw err;
          }
        });
      }
      case 'set-password': {
        const { password, generated } = await newPassword();
        let hash: string;
        try { hash = await (await hasher()).hash(password); } catch (err) {
          if (err instanceof PasswordRejected) throw new UsageError(err.message);
          throw err;
        }
        return withCliStore(config, async (store) => {
          const repo = new UserRepository(store.db);
          const user = await findOrFail(repo, positionals[0]);
          await repo.setPasswordHash(user.id, hash, now());
          process.stdout.write(`password of ${user.username} replaced\n`);
          if (generated) process.stdout.write(`password (shown once): ${password}\n`);
          return 0;
        });
      }
      case 'disable':
      case 'enable':
        return withCliStore(config, async (store) => {
          const repo = new UserRepository(store.db);
          const user = await findOrFail(repo, positionals[0]);
          await repo.setDisabled(user.id, sub === 'disable', now());
          process.stdout.write(`${user.username} ${sub}d\n`);
          return 0;
        });
      case 'list':
        return withCliStore(config, async (store) => {
          const users = await new UserRepository(store.db).list();
          if (values.json) {
            process.stdout.write(`${JSON.stringify(users.map(describeUser), null, 2)}\n`);
          } else {
            for (const u of users) process.stdout.write(`${u.username}\t${u.id}\t${u.email ?? '-'}\t${u.disabled ? 'disabled' : 'active'}\n`);
          }
          return 0;
        });
      default:
        throw new UsageError(`unknown subcommand "${sub ?? ''}"\n\n${HELP}`);
    }
  },
};
