import { describe, expect, it } from 'vitest';
import { isDatabaseUnavailable } from '../../src/platform/db/unavailable.js';

const coded = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('isDatabaseUnavailable: 503 and retry, or a bug (500) / a refusal for the data', () => {
  it.each([
    ['ECONNREFUSED', coded('ECONNREFUSED')],
    ['ECONNRESET', coded('ECONNRESET')],
    ['ETIMEDOUT', coded('ETIMEDOUT')],
    ['ENOTFOUND (DNS of a failed-over host)', coded('ENOTFOUND')],
    ['AggregateError of refused addresses', new AggregateError([coded('ECONNREFUSED'), coded('ECONNREFUSED')], 'connect failed')],
    ['57P01 admin_shutdown', coded('57P01', 'terminating connection due to administrator command')],
    ['57P03 cannot_connect_now', coded('57P03', 'the database system is starting up')],
    ['08006 connection_failure', coded('08006')],
    ['53100 disk_full', coded('53100')],
    ['53300 too_many_connections', coded('53300')],
    ['25006 read_only_sql_transaction (a standby)', coded('25006')],
    ['40001 serialization_failure', coded('40001')],
    ['40P01 deadlock_detected', coded('40P01')],
    ['pg: Connection terminated unexpectedly', new Error('Connection terminated unexpectedly')],
    ['pg: Connection terminated due to connection timeout', new Error('Connection terminated due to connection timeout')],
    ['pg-pool: timeout exceeded when trying to connect', new Error('timeout exceeded when trying to connect')],
    ['pg: not queryable after a connection error', new Error('Client has encountered a connection error and is not queryable')],
    ['wrapped as a cause', new Error('query failed', { cause: coded('ECONNRESET') })],
  ])('%s: unavailable', (_, err) => {
    expect(isDatabaseUnavailable(err)).toBe(true);
  });

  it.each([
    ['23505 unique_violation', coded('23505')],
    ['22P02 invalid_text_representation', coded('22P02')],
    ['42P01 undefined_table (a bug, not an outage)', coded('42P01')],
    ['42501 insufficient_privilege', coded('42501')],
    ['a plain error', new Error('boom')],
    ['a TypeError', new TypeError('cannot read properties of undefined')],
    ['a message that merely mentions a connection', new Error('invalid connection string in CLIENTS_FILE')],
    ['null', null],
    ['a string', 'ECONNREFUSED'],
    ['a code that is not a string', { code: 57 }],
  ])('%s: not unavailable', (_, err) => {
    expect(isDatabaseUnavailable(err)).toBe(false);
  });

  it('does not follow a cause chain forever (a cycle)', () => {
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(isDatabaseUnavailable(a)).toBe(false);
  });
});
