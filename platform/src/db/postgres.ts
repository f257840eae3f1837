import pg from 'pg';
import { postgresListener } from './postgres-listener.ts';
import type { Driver, Transaction } from './types.ts';

export function postgresDriver(url: string, schema: string, poolSize: number): Driver {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    options: `-c search_path=${schema}`,
    application_name: `jarvis-${schema}`,
  });
  // An idle client's error (server restart) must not crash the process; the next checkout reconnects.
  pool.on('error', () => {});
  const listener = postgresListener(url, `jarvis-${schema}-listen`);

  return {
    kind: 'postgres',
    async transaction(work, setup) {
      const client = await pool.connect();
      const tx: Transaction = {
        query: async (sql, params) => (await client.query(sql, params as unknown[])).rows,
        exec: async (sql) => void (await client.query(sql)),
      };
      try {
        await client.query(setup ? `BEGIN; ${setup}` : 'BEGIN');
        const result = await work(tx);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    listen: listener.listen,
    async close() {
      await listener.close();
      await pool.end();
    },
  };
}
